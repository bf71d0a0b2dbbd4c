"""ccxt clients pointed at an exchange, real or simulated.

``make_client(kind, base_url, credentials)`` returns a ``ccxt.async_support`` exchange with
every ``urls['api']`` value that points at the exchange rewritten to ``base_url`` (ccxt's
``sign()`` refuses a missing key, so none is dropped; a ``ccxt.pro`` class's websocket URLs,
``urls['api']['ws']``, to ``base_url``'s host with ``ws://``/``wss://``, path kept), ``fetchCurrencies`` off (or
``load_markets`` calls a spot endpoint), ccxt's own throttler on, and a bounded timeout.
For OKX it is ``OkxForHedging``: the same calls in base units and Binance's parameter names.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from decimal import Decimal

import ccxt
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


_EXP_TIME_MS: contextvars.ContextVar[int | None] = contextvars.ContextVar("okx_exp_time_ms", default=None)
FILL_READS_MAX = 3  # reads of a just-placed IOC order that is still live before it is left to resolution


def _scaled(value, factor: Decimal):
    return None if value is None else float(Decimal(repr(value)) * factor)


def okx_client_order_id(cid: str) -> str:
    """The hedger's ``ap<hex>-<attempt>`` as OKX allows it (letters and digits, ≤ 32): '-' → 'x'."""
    return cid.replace("-", "x")


def hedger_client_order_id(cl_ord_id: str | None) -> str | None:
    if cl_ord_id and cl_ord_id.startswith("ap") and cl_ord_id.count("x") == 1:
        return cl_ord_id.replace("x", "-")
    return cl_ord_id


class OkxForHedging(ccxt_async.okx):
    """ccxt's ``okx`` speaking the hedger's exchange-neutral dialect (which is Binance's):

    - amounts in **base units**: OKX counts swap sizes in contracts of ``ctVal`` (BTC 0.01,
      ETH 0.1); markets, orders, positions and books are scaled by ``contractSize`` here, so
      a hedge of 0.02 BTC is 2 contracts on the wire, never 0.02 contracts; book levels are
      ``[price, quantity]`` pairs as Binance's;
    - ``newClientOrderId`` / ``origClientOrderId`` → ``clOrdId`` (``-`` → ``x``: OKX takes
      letters and digits only);
    - ``timestamp`` (the hedger's write-ahead ms) + ``recvWindow`` → the ``expTime`` header, so
      OKX refuses an order that arrives late (50102), as Binance does past ``recvWindow``;
    - ``create_order`` answers with the fill: OKX's ack carries none (``sCode``, ``ordId``), so
      the order is read back; an IOC still ``live`` after ``FILL_READS_MAX`` reads raises
      ``RequestTimeout`` and the hedger resolves it by its client id.
    """

    recv_window_ms = 5_000

    def _size(self, symbol: str) -> Decimal:
        market = self.markets.get(symbol) if self.markets else None
        size = market.get("contractSize") if market and market.get("contract") else None
        return Decimal(repr(size)) if size else Decimal(1)

    def parse_market(self, market):
        m = super().parse_market(market)
        if m.get("contract") and m.get("contractSize") not in (None, 1):
            size = Decimal(repr(m["contractSize"]))
            m["precision"]["amount"] = _scaled(m["precision"]["amount"], size)
            for bound in ("min", "max"):
                m["limits"]["amount"][bound] = _scaled(m["limits"]["amount"][bound], size)
        return m

    def parse_order(self, order, market=None):
        o = super().parse_order(order, market)
        if o.get("symbol"):
            size = self._size(o["symbol"])
            for key in ("amount", "filled", "remaining"):
                o[key] = _scaled(o.get(key), size)
        o["clientOrderId"] = hedger_client_order_id(o.get("clientOrderId"))
        return o

    def parse_position(self, position, market=None):
        p = super().parse_position(position, market)
        p["contracts"] = _scaled(p.get("contracts"), self._size(p["symbol"]))
        return p

    async def fetch_order_book(self, symbol, limit=None, params={}):
        book = await super().fetch_order_book(symbol, limit, params)
        size = self._size(symbol)
        for side in ("bids", "asks"):
            # [price, base quantity]: ccxt's okx adds a third field (orders at the level) that
            # the hedger's analysis (price, qty pairs) does not take
            book[side] = [[level[0], _scaled(level[1], size)] for level in book[side]]
        return book

    def sign(self, *args, **kwargs):
        request = super().sign(*args, **kwargs)
        exp_time_ms = _EXP_TIME_MS.get()
        if exp_time_ms is not None and request.get("headers") is not None:
            request["headers"]["expTime"] = str(exp_time_ms)
        return request

    async def create_order(self, symbol, type, side, amount, price=None, params={}):
        if not self.markets:
            await self.load_markets()
        params = dict(params)
        cid = params.pop("newClientOrderId", None)
        if cid is not None:
            params["clOrdId"] = okx_client_order_id(cid)
        sent_ms = params.pop("timestamp", None)
        contracts = float(Decimal(repr(amount)) / self._size(symbol))
        token = _EXP_TIME_MS.set(int(sent_ms) + self.recv_window_ms if sent_ms is not None else None)
        try:
            ack = await super().create_order(symbol, type, side, contracts, price, params)
        finally:
            _EXP_TIME_MS.reset(token)
        ioc = params.get("timeInForce") in ("IOC", "FOK")
        for _ in range(FILL_READS_MAX):
            order = await self.fetch_order(ack["id"], symbol)
            if not ioc or order.get("status") != "open":
                return order
        raise ccxt.RequestTimeout(f"okx order {ack['id']} still live after {FILL_READS_MAX} reads")

    async def fetch_order(self, id, symbol=None, params={}):
        params = dict(params)
        cid = params.pop("origClientOrderId", None)
        if cid is not None:
            params["clOrdId"] = okx_client_order_id(cid)
        return await super().fetch_order(id, symbol, params)


def _rewrite(urls, real_hosts: tuple[str, ...], base_url: str):
    if isinstance(urls, dict):
        return {k: _rewrite(v, real_hosts, base_url) for k, v in urls.items()}
    if isinstance(urls, str):
        for host in real_hosts:
            if urls.startswith(host):
                return base_url.rstrip("/") + urls[len(host):]
    return urls


def _rewrite_ws(urls, base_url: str):
    """Every ``wss://host[:port]`` → ``base_url``'s host over ws (http) or wss (https), path kept."""
    if isinstance(urls, dict):
        return {k: _rewrite_ws(v, base_url) for k, v in urls.items()}
    if isinstance(urls, str) and urls.startswith("wss://"):
        scheme, host = base_url.rstrip("/").split("://", 1)
        path = urls[len("wss://"):].partition("/")[2]
        return f"{'wss' if scheme == 'https' else 'ws'}://{host}/{path}"
    return urls


def make_client(kind: str, base_url: str | None, credentials: Credentials | None, *,
                timeout_ms: int = TIMEOUT_MS_DEFAULT, recv_window_ms: int | None = None,
                rate_limit_ms: float | None = None, client_class=None):
    """A ccxt async client for ``kind``; ``base_url=None`` keeps the real exchange's URLs.
    ``client_class`` replaces ccxt's class for ``kind`` (and ``OkxForHedging``), e.g. a ``ccxt.pro``
    one for websockets; its websocket URLs are rewritten too."""
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
    if client_class is not None:
        client = client_class(config)
    else:
        client = OkxForHedging(config) if kind == "okx" else getattr(ccxt_async, kind)(config)
    if kind == "okx" and recv_window_ms is not None:
        client.recv_window_ms = recv_window_ms
    if base_url is not None:
        client.urls["api"] = _rewrite(client.urls["api"], REAL_HOSTS[kind], base_url)
        if "ws" in client.urls["api"]:
            client.urls["api"]["ws"] = _rewrite_ws(client.urls["api"]["ws"], base_url)
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
        # ccxt maps OKX's 50011 (HTTP 429) to RateLimitExceeded, a sibling of DDoSProtection
        # (what Binance's 429 becomes); the hedger's budget backs off on DDoSProtection.
        client.exceptions["exact"]["50011"] = ccxt.DDoSProtection
    return client
