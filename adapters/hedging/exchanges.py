"""ccxt clients pointed at an exchange, real or simulated.

``make_client(kind, base_url, credentials)`` returns a ``ccxt.async_support`` exchange with
every ``urls['api']`` value that points at the exchange rewritten to ``base_url`` (ccxt's
``sign()`` refuses a missing key, so none is dropped), ``fetchCurrencies`` off (or
``load_markets`` calls a spot endpoint), ccxt's own throttler on, and a bounded timeout.
"""

from __future__ import annotations

from dataclasses import dataclass

import ccxt.async_support as ccxt_async

KINDS = ("binanceusdm", "okx")
REAL_HOSTS = {
    "binanceusdm": ("https://fapi.binance.com", "https://dapi.binance.com", "https://api.binance.com",
                    "https://eapi.binance.com", "https://papi.binance.com", "https://www.binance.com"),
    "okx": ("https://www.okx.com", "https://{hostname}"),
}
TIMEOUT_MS_DEFAULT = 5_000


@dataclass(frozen=True)
class Credentials:
    api_key: str
    secret: str
    password: str = ""  # OKX's API passphrase

    def __repr__(self) -> str:  # never print a secret, even by accident
        return f"Credentials(api_key={self.api_key[:4]}…, secret=<redacted>)"


def _rewrite(urls, real_hosts: tuple[str, ...], base_url: str):
    if isinstance(urls, dict):
        return {k: _rewrite(v, real_hosts, base_url) for k, v in urls.items()}
    if isinstance(urls, str):
        for host in real_hosts:
            if urls.startswith(host):
                return base_url.rstrip("/") + urls[len(host):]
    return urls


def make_client(kind: str, base_url: str | None, credentials: Credentials | None, *,
                timeout_ms: int = TIMEOUT_MS_DEFAULT, recv_window_ms: int | None = None,
                rate_limit_ms: float | None = None):
    """A ccxt async client for ``kind``; ``base_url=None`` keeps the real exchange's URLs."""
    if kind not in KINDS:
        raise ValueError(f"unknown exchange kind {kind!r}; known: {', '.join(KINDS)}")
    config: dict = {"enableRateLimit": True, "timeout": timeout_ms, "options": {"fetchCurrencies": False}}
    if credentials is not None:
        config.update(apiKey=credentials.api_key, secret=credentials.secret)
        if credentials.password:
            config["password"] = credentials.password
    if rate_limit_ms is not None:  # ccxt's throttler: ms per unit of request cost (Binance: 50)
        config["rateLimit"] = rate_limit_ms
    if recv_window_ms is not None:
        config["options"]["recvWindow"] = recv_window_ms
    client = getattr(ccxt_async, kind)(config)
    if base_url is not None:
        client.urls["api"] = _rewrite(client.urls["api"], REAL_HOSTS[kind], base_url)
        if kind == "binanceusdm":
            # ccxt picks Binance's per-market error tables by the URL's host (fapi.binance.com
            # → linear); a local URL matches none, so say it is the USDⓈ-M (linear) one.
            for how, table in client.exceptions["linear"].items():
                client.exceptions[how] = {**client.exceptions.get(how, {}), **table}
        if kind == "okx":
            client.hostname = base_url.split("://", 1)[1].rstrip("/")
    if kind == "okx":
        # okx's load_markets asks the private /asset/currencies whenever keys are set (ccxt
        # reads has['fetchCurrencies'], not the option) and lists four instrument types;
        # we trade USDT swaps only.
        client.has["fetchCurrencies"] = False
        client.options["fetchMarkets"] = {"types": ["swap"]}
        client.options["defaultType"] = "swap"
    return client
