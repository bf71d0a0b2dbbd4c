"""The CCXT median price source: the tops of books of N configured exchanges through the
real ``ccxt.async_support`` clients, polled, medianed (``ccxt_parse.aggregate``).

Each round (every ``poll_interval_s``) asks every exchange that may be asked, at once, for
the top of book of every configured market in **one request**: ``fetch_bids_asks`` where ccxt
has it (Binance USDⓈ-M: ``GET /fapi/v1/ticker/bookTicker``), else ``fetch_tickers`` (OKX:
``GET /api/v5/market/tickers?instType=SWAP``). An exchange may be asked when its request
budget (``requests_per_10s``, its first request loading its markets included) has room and
it is not backing off after a failure (capped exponential backoff with jitter, reset by an
answer). What failed or was skipped is noted (``exchange_error``, ``budget``); a price that
does not convert is dropped with the exchange in the detail; then, per market, the
aggregate goes to the sink or is dropped (``too_few_sources``), and each exchange left out
for diverging or being stale is noted (``diverged``, ``stale``).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field

import ccxt

from adapters.hedging.exchanges import make_client
from adapters.oracle import ccxt_parse as parse
from adapters.oracle.limits import Backoff, RequestBudget
from adapters.oracle.source import Sink
from engine.commands import OracleUpdate
from engine.units import ORACLE_SOURCE_LEN_MAX, SOURCE_NAME_LEN_MAX, SOURCES_MAX

log = logging.getLogger("agentperp.oracle.ccxt")

SOURCE = "ccxt"
EXCHANGES_MAX = SOURCES_MAX  # a median of more is a configuration error (and beyond the engine's sources)
# Notes to the sink (labels of agentperp_oracle_source_events)
EXCHANGE_ERROR = "exchange_error"
BUDGET = "budget"
DIVERGED = "diverged"
STALE = "stale"
COUNTED = (EXCHANGE_ERROR, BUDGET, DIVERGED, STALE)  # per exchange, in status() (/health → oracle.sources)


@dataclass(frozen=True)
class CcxtExchange:
    name: str  # ours, in the provenance: "binanceusdm", "okx", "binance-b"
    kind: str  # ccxt id: binanceusdm | okx
    base_url: str | None = None  # None: the real exchange; else a simulator


@dataclass(frozen=True)
class CcxtSettings:
    exchanges: tuple[CcxtExchange, ...]
    symbols: dict[int, str]  # market → ccxt unified symbol (BTC/USDT:USDT)
    divergence_bps_max: int = 50
    sources_min: int = 2
    stale_s: float = 5.0
    poll_interval_s: float = 1.0
    requests_per_10s: int = 20  # per exchange
    timeout_ms: int = 3_000
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0

    def __post_init__(self):
        names = [e.name for e in self.exchanges]
        assert 1 <= len(names) <= EXCHANGES_MAX and len(set(names)) == len(names), \
            f"ccxt oracle: 1..{EXCHANGES_MAX} exchanges with distinct names"
        assert 1 <= self.sources_min <= len(names), "ccxt oracle: sources_min between 1 and the exchanges"
        assert self.symbols, "ccxt oracle: at least one market needs a symbol"
        # the provenance must fit the engine's bounds, or every price would be refused
        assert all(1 <= len(n) <= SOURCE_NAME_LEN_MAX for n in names), \
            f"ccxt oracle: exchange names of 1..{SOURCE_NAME_LEN_MAX} characters"
        assert len(parse.source_of(tuple(names))) <= ORACLE_SOURCE_LEN_MAX, \
            f"ccxt oracle: 'ccxt:' + the names joined by '+' must fit {ORACLE_SOURCE_LEN_MAX} characters"


@dataclass
class _Exchange:
    config: CcxtExchange
    client: object
    budget: RequestBudget
    backoff: Backoff
    retry_at_s: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)


class CcxtSource:
    """The CCXT median source (see the module's docstring)."""

    name = SOURCE

    def __init__(self, settings: CcxtSettings, clock, *, rng: random.Random | None = None, client_factory=make_client):
        self.settings = settings
        self.clock = clock  # ns, the venue's
        self.rng = rng or random.Random()
        self._factory = client_factory
        self.markets_by_symbol = {symbol: market for market, symbol in settings.symbols.items()}
        self.order = tuple(e.name for e in settings.exchanges)
        self.rounds = 0
        self.exchanges: list[_Exchange] = []
        # per exchange, from the start (before the first round too): status() shows every one
        self.counts = {e.name: dict.fromkeys(COUNTED, 0) for e in settings.exchanges}

    async def run(self, sink: Sink) -> None:
        s = self.settings
        self.exchanges = [
            _Exchange(e, self._factory(e.kind, e.base_url, None, timeout_ms=s.timeout_ms),
                      RequestBudget(s.requests_per_10s, 10.0), Backoff(s.backoff_base_s, s.backoff_max_s, rng=self.rng),
                      counts=self.counts[e.name])
            for e in s.exchanges]
        try:
            while True:
                started = time.monotonic()
                await self.poll_once(sink)
                await asyncio.sleep(max(0.0, s.poll_interval_s - (time.monotonic() - started)))
        finally:
            await asyncio.gather(*(x.client.close() for x in self.exchanges), return_exceptions=True)

    async def poll_once(self, sink: Sink) -> None:
        """One round: ask every exchange that may be asked, then price every market."""
        self.rounds += 1
        answers = await asyncio.gather(*(self._ask(x, sink) for x in self.exchanges))
        received_ns = self.clock()
        quotes: dict[int, list[parse.Quote]] = {m: [] for m in self.settings.symbols}
        for x, tickers in zip(self.exchanges, answers):
            for symbol, ticker in (tickers or {}).items():
                market = self.markets_by_symbol.get(symbol)
                if market is None:
                    continue
                quote = parse.parse_quote(x.config.name, ticker, received_ns)
                if isinstance(quote, parse.Drop):
                    sink.drop(quote.reason, quote.detail)
                else:
                    quotes[market].append(quote)
        now_ns = self.clock()
        s = self.settings
        for market, found in quotes.items():
            median = parse.aggregate(found, now_ns=now_ns, stale_ns=int(s.stale_s * 1e9),
                                     divergence_bps_max=s.divergence_bps_max, sources_min=s.sources_min,
                                     order=self.order)
            if isinstance(median, parse.Drop):
                sink.drop(median.reason, f"{s.symbols[market]}: {median.detail}")
                continue
            for name in median.diverged:
                self._count(name, DIVERGED)
                sink.note(DIVERGED, f"{name} {s.symbols[market]}")
            for name in median.stale:
                self._count(name, STALE)
                sink.note(STALE, f"{name} {s.symbols[market]}")
            sink.update(OracleUpdate(market, median.price_e8, median.conf_e8, median.publish_ns, median.source,
                                     sources=list(median.kept), spread_bps=median.spread_bps))

    def _count(self, name: str, what: str) -> None:
        self.counts[name][what] += 1

    async def _ask(self, x: _Exchange, sink: Sink) -> dict | None:
        """The exchange's tickers by unified symbol, or None (skipped, failed)."""
        now_s = time.monotonic()
        if now_s < x.retry_at_s:
            return None
        requests = 1 if x.client.markets else 2  # the first round loads the markets too
        if x.budget.room() < requests:
            x.counts[BUDGET] += 1
            sink.note(BUDGET, x.config.name)
            return None
        for _ in range(requests):
            x.budget.take()
        symbols = [s for s in self.settings.symbols.values()]
        try:
            if not x.client.markets:
                await x.client.load_markets()
            symbols = [s for s in symbols if s in x.client.markets]
            if x.client.has.get("fetchBidsAsks"):
                tickers = await x.client.fetch_bids_asks(symbols)
            else:
                tickers = await x.client.fetch_tickers(symbols)
        except ccxt.BaseError as error:
            delay_s = x.backoff.next_s()
            x.retry_at_s = time.monotonic() + delay_s
            x.counts[EXCHANGE_ERROR] += 1
            sink.note(EXCHANGE_ERROR, f"{x.config.name}: {type(error).__name__}")
            if x.counts[EXCHANGE_ERROR] <= 10 or x.counts[EXCHANGE_ERROR] % 100 == 0:
                log.warning("ccxt oracle: %s failed (%s: %s); next try in %.3g s", x.config.name,
                            type(error).__name__, str(error)[:200], delay_s)
            return None
        x.backoff.reset()
        return tickers

    def status(self) -> dict:
        """Per exchange (configuration order): the rounds it failed (``exchange_error``), was
        skipped for want of budget (``budget``), was left out of a market's median for diverging
        (``diverged``) or for a stale timestamp (``stale``). Shown in ``/health`` → ``oracle.sources``."""
        return {name: dict(counts) for name, counts in self.counts.items()}
