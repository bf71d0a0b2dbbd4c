"""The CCXT median price source: the tops of books of N configured exchanges through the
real ccxt clients, medianed (``ccxt_parse.aggregate``), read by websocket (``transport="ws"``,
the default) or polled over REST (``transport="rest"``).

**Websocket.** Each exchange's ccxt pro client (``ccxt_ws.make_ws_client``) watches the tops
of book of every configured market on one connection: ``watch_bids_asks`` (Binance USDⓈ-M:
``<symbol>@bookTicker``; OKX: ``bbo-tbt``), else ``watch_tickers``. Each push replaces that
exchange's quote for its market and marks the market for pricing; markets are priced at most
every ``ws_price_interval_s`` (pushes in between coalesce), from the latest quote of every
exchange that is live. An exchange whose websocket fails, closes, or stays silent for
``stale_s`` (it could not give a fresh price anyway) is noted ``ws_reconnect``; its quotes are
forgotten and it is polled over REST every ``poll_interval_s`` (budget, backoff and notes as
below) while the websocket is redialled after a capped exponential backoff with jitter; the
first push ends the fallback. A frame of the wrong shape is dropped (``malformed``) before
ccxt reads it.

**REST.** Each round (every ``poll_interval_s``) asks every exchange that may be asked, at once, for
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
from adapters.oracle.ccxt_ws import make_ws_client
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
WS_RECONNECT = "ws_reconnect"  # the websocket was lost (or never came up): REST until it is back
COUNTED = (EXCHANGE_ERROR, BUDGET, DIVERGED, STALE, WS_RECONNECT)  # per exchange, in status() (/health)
TRANSPORTS = ("ws", "rest")


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
    transport: str = "ws"  # ws: websocket tops of book, REST while one is down; rest: polled only
    ws_price_interval_s: float = 0.1  # ws: a market is priced at most this often (pushes coalesce)

    def __post_init__(self):
        assert self.transport in TRANSPORTS, f"ccxt oracle: transport one of {', '.join(TRANSPORTS)}"
        assert self.ws_price_interval_s > 0 and self.poll_interval_s >= 0 and self.stale_s > 0, \
            "ccxt oracle: positive intervals"
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
    # websocket transport
    ws_backoff: Backoff | None = None
    ws_up: bool = False  # a push arrived since the last (re)connection
    ws_down: asyncio.Event = field(default_factory=asyncio.Event)  # set while REST stands in
    rest_idle: asyncio.Event = field(default_factory=lambda: _already_set(asyncio.Event()))  # no REST stand-in request out
    quotes: dict[int, parse.Quote] = field(default_factory=dict)  # market -> the latest (bounded by markets)
    seen: dict[str, dict] = field(default_factory=dict)  # symbol -> ccxt's ticker last taken (bounded by markets)


def _already_set(event: asyncio.Event) -> asyncio.Event:
    event.set()
    return event


class CcxtSource:
    """The CCXT median source (see the module's docstring)."""

    name = SOURCE

    def __init__(self, settings: CcxtSettings, clock, *, rng: random.Random | None = None):
        self.settings = settings
        self.clock = clock  # ns, the venue's
        self.rng = rng or random.Random()
        self.markets_by_symbol = {symbol: market for market, symbol in settings.symbols.items()}
        self.order = tuple(e.name for e in settings.exchanges)
        self.rounds = 0  # REST: rounds asked; ws: pricing passes
        self.exchanges: list[_Exchange] = []
        # per exchange, from the start (before the first round too): status() shows every one
        self.counts = {e.name: dict.fromkeys(COUNTED, 0) for e in settings.exchanges}
        self._dirty: set[int] = set()  # ws: markets with a new quote since they were last priced
        self._wake = asyncio.Event()
        self._settled = asyncio.Event()  # ws: every exchange's stream is up or has failed once

    def _client(self, config: CcxtExchange, sink: Sink):
        s = self.settings
        if s.transport == "rest":
            return make_client(config.kind, config.base_url, None, timeout_ms=s.timeout_ms)
        on_drop = lambda reason, detail: sink.drop(reason, f"{config.name} ws: {detail}")  # noqa: E731
        return make_ws_client(config.kind, config.base_url, timeout_ms=s.timeout_ms, on_drop=on_drop)

    async def run(self, sink: Sink) -> None:
        s = self.settings
        self.exchanges = [
            _Exchange(e, self._client(e, sink), RequestBudget(s.requests_per_10s, 10.0),
                      Backoff(s.backoff_base_s, s.backoff_max_s, rng=self.rng), counts=self.counts[e.name],
                      ws_backoff=Backoff(s.backoff_base_s, s.backoff_max_s, rng=self.rng))
            for e in s.exchanges]
        try:
            if s.transport == "rest":
                await self._poll_forever(sink)
            else:
                async with asyncio.TaskGroup() as tasks:
                    for x in self.exchanges:
                        tasks.create_task(self._stream(x, sink))
                        tasks.create_task(self._fallback(x, sink))
                    tasks.create_task(self._price_forever(sink))
        finally:
            await asyncio.gather(*(x.client.close() for x in self.exchanges), return_exceptions=True)

    # -- REST: rounds -----------------------------------------------------------------------
    async def _poll_forever(self, sink: Sink) -> None:
        s = self.settings
        while True:
            started = time.monotonic()
            await self.poll_once(sink)
            await asyncio.sleep(max(0.0, s.poll_interval_s - (time.monotonic() - started)))

    async def poll_once(self, sink: Sink) -> None:
        """One round: ask every exchange that may be asked, then price every market."""
        self.rounds += 1
        answers = await asyncio.gather(*(self._ask(x, sink) for x in self.exchanges))
        received_ns = self.clock()
        quotes: dict[int, list[parse.Quote]] = {m: [] for m in self.settings.symbols}
        for x, tickers in zip(self.exchanges, answers):
            for market, quote in self._quotes(x, tickers, received_ns, sink).items():
                quotes[market].append(quote)
        self._price(quotes, sink)

    def _quotes(self, x: _Exchange, tickers: dict | None, received_ns: int, sink: Sink) -> dict[int, parse.Quote]:
        """An exchange's answer (ccxt tickers by symbol) → its quotes by market; drops noted."""
        found: dict[int, parse.Quote] = {}
        for symbol, ticker in (tickers or {}).items():
            market = self.markets_by_symbol.get(symbol)
            if market is None:
                continue
            quote = parse.parse_quote(x.config.name, ticker, received_ns)
            if isinstance(quote, parse.Drop):
                sink.drop(quote.reason, quote.detail)
                if x.quotes.pop(market, None) is not None:  # its top is unknown now: the old one goes
                    self._mark([market])
            else:
                found[market] = quote
        return found

    def _price(self, quotes: dict[int, list[parse.Quote]], sink: Sink) -> None:
        """Each market's median of ``quotes`` to the sink, or its drop; left-out exchanges noted."""
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

    # -- websocket: pushes, the REST stand-in, pricing --------------------------------------
    async def _stream(self, x: _Exchange, sink: Sink) -> None:
        """Watch the exchange's tops of book for as long as the source runs, redialling."""
        s = self.settings
        while True:
            # The markets load outside the stream's timeout: ccxt shares one load between its
            # callers, and a timeout cancelling it would cancel the REST stand-in's wait too.
            if not x.client.markets and not await self._load_markets(x, sink):
                await asyncio.sleep(max(x.retry_at_s - time.monotonic(), s.backoff_base_s))  # REST's own retry
                continue
            try:
                tickers = await asyncio.wait_for(self._watch(x), timeout=s.stale_s)
            except (ccxt.BaseError, TimeoutError, OSError) as error:
                await self._ws_lost(x, sink, error)
                await asyncio.sleep(x.ws_backoff.next_s())
                continue
            if not x.ws_up:
                x.ws_up = True
                x.ws_down.clear()
                self._forget(x)  # REST's stand-in quotes make way for the stream's
                log.info("ccxt oracle: %s websocket up", x.config.name)
            x.ws_backoff.reset()
            self._take(x, tickers, sink)

    async def _watch(self, x: _Exchange) -> dict:
        symbols = [s for s in self.settings.symbols.values() if s in x.client.markets]
        if x.client.has.get("watchBidsAsks"):
            await x.client.watch_bids_asks(symbols)
            latest = x.client.bidsasks
        else:
            await x.client.watch_tickers(symbols)
            latest = x.client.tickers
        # a watch returns the push that resolved it; ccxt's cache also holds those it read meanwhile
        # (several frames in one read resolve one watch): take every market's latest from the cache,
        # each ticker once (ccxt makes a new one per push)
        fresh = {symbol: latest[symbol] for symbol in symbols if latest.get(symbol) is not x.seen.get(symbol)}
        x.seen.update(fresh)
        return fresh

    async def _load_markets(self, x: _Exchange, sink: Sink) -> bool:
        """Load the exchange's markets (one request of its budget); False when it could not."""
        if x.budget.room() < 1:
            x.counts[BUDGET] += 1
            sink.note(BUDGET, x.config.name)
            return False
        x.budget.take()
        try:
            await x.client.load_markets()
        except ccxt.BaseError as error:
            self._failed(x, sink, error)
            return False
        return True

    async def _ws_lost(self, x: _Exchange, sink: Sink, error: BaseException) -> None:
        """The websocket failed: count it once per loss, stand REST in, close what is left of it."""
        if not x.ws_down.is_set():  # (up implies not down)
            x.counts[WS_RECONNECT] += 1
            sink.note(WS_RECONNECT, f"{x.config.name}: {type(error).__name__}")
            if x.counts[WS_RECONNECT] <= 10 or x.counts[WS_RECONNECT] % 100 == 0:
                log.warning("ccxt oracle: %s websocket lost (%s: %s); REST until it is back", x.config.name,
                            type(error).__name__, str(error)[:200])
        x.ws_up = False
        x.ws_down.set()
        self._check_settled()
        x.client.bidsasks, x.client.tickers = {}, {}  # ccxt's cache of the lost stream: not to be read again
        x.seen.clear()
        self._forget(x)  # no longer answered: not fresh, whatever their timestamps say
        # a connection that timed out may still be open (and silent): close it so the next watch redials
        await asyncio.gather(x.client.close_ws_clients(), return_exceptions=True)

    async def _fallback(self, x: _Exchange, sink: Sink) -> None:
        """While the exchange's websocket is down, poll it over REST every ``poll_interval_s``."""
        s = self.settings
        while True:
            await x.ws_down.wait()
            started = time.monotonic()
            x.rest_idle.clear()
            try:
                tickers = await self._ask(x, sink)
            finally:
                x.rest_idle.set()
            if x.ws_up:  # the stream came back meanwhile: its quotes win
                continue
            self._forget(x)  # only this answer counts as answered (as a REST round)
            self._take(x, tickers, sink)
            await asyncio.sleep(max(0.0, s.poll_interval_s - (time.monotonic() - started)))

    def _take(self, x: _Exchange, tickers: dict | None, sink: Sink) -> None:
        """Keep the exchange's new quotes; mark the markets whose quote changed."""
        changed = {m: q for m, q in self._quotes(x, tickers, self.clock(), sink).items() if x.quotes.get(m) != q}
        x.quotes.update(changed)
        self._mark(changed)
        if not self._settled.is_set():
            self._check_settled()

    def _forget(self, x: _Exchange) -> None:
        """The exchange's quotes no longer count: their markets are priced again without them
        (and with whatever it says next)."""
        self._mark(x.quotes)
        x.quotes.clear()

    def _mark(self, markets) -> None:
        self._dirty.update(markets)
        self._wake.set()

    def _check_settled(self) -> None:
        markets = len(self.settings.symbols)
        if all(len(x.quotes) >= markets or x.ws_down.is_set() for x in self.exchanges):
            self._settled.set()

    async def _price_forever(self, sink: Sink) -> None:
        """Price the markets with new quotes, at most every ``ws_price_interval_s``; the first
        time once every exchange has quoted every market or has failed (else the first to
        connect would be priced alone: ``too_few_sources``), or after ``stale_s``."""
        try:
            async with asyncio.timeout(self.settings.stale_s):
                await self._settled.wait()
        except TimeoutError:
            pass
        while True:
            await self._wake.wait()
            self._wake.clear()
            dirty, self._dirty = self._dirty, set()
            self.rounds += 1
            self._price({m: [x.quotes[m] for x in self.exchanges if m in x.quotes] for m in sorted(dirty)}, sink)
            await asyncio.sleep(self.settings.ws_price_interval_s)  # pushes meanwhile coalesce

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
            self._failed(x, sink, error)
            return None
        x.backoff.reset()
        return tickers

    def _failed(self, x: _Exchange, sink: Sink, error: BaseException) -> None:
        """A REST request failed: count it, and ask no more before the backoff's delay."""
        delay_s = x.backoff.next_s()
        x.retry_at_s = time.monotonic() + delay_s
        x.counts[EXCHANGE_ERROR] += 1
        sink.note(EXCHANGE_ERROR, f"{x.config.name}: {type(error).__name__}")
        if x.counts[EXCHANGE_ERROR] <= 10 or x.counts[EXCHANGE_ERROR] % 100 == 0:
            log.warning("ccxt oracle: %s failed (%s: %s); next try in %.3g s", x.config.name,
                        type(error).__name__, str(error)[:200], delay_s)

    def status(self) -> dict:
        """Per exchange (configuration order): the requests it failed (``exchange_error``), was
        skipped for want of budget (``budget``), was left out of a market's median for diverging
        (``diverged``) or for a stale timestamp (``stale``), lost its websocket and fell back to REST
        (``ws_reconnect``). Shown in ``/health`` → ``oracle.sources``."""
        return {name: dict(counts) for name, counts in self.counts.items()}
