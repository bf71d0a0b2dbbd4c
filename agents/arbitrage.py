"""ArbitrageMaker: quote the venue's RFQs from a centralized exchange's perp funding rate plus
the cost of hedging the fill there.

A maker that fills a **long** RFQ is short on the venue and hedges by **buying** the CEX
perp; holding that long it pays the CEX funding rate ``f`` (per 8h, when positive) and
receives the venue rate ``r`` from the taker. Filling a short RFQ it hedges by selling and
receives ``f``. So, per 8 h interval (e9):

    r = funding leg + hedge cost + edge
    funding leg = +f (hedge long) | −f (hedge short)
    hedge cost  = 2 × (hedge_cost_bps + venue maker fee bps) × 1e5 × 8 h / holding
                  (open and close the hedge, amortized over the expected holding: the RFQ's
                   fixed duration, else ``holding_hours``; never less than 1 h)

``hedge_cost_bps`` is half the CEX spread + the price impact of the hedge size + the CEX taker
fee, from the book (``protocol.orderbook.hedge_cost_bps``: the hedger's own analysis). A CEX funding rate on another interval is scaled to 8 h (``scale_to_8h_e9``).

Where the inputs come from is a ``HedgeFeed``: ``funding_rate_e9(market, now_ns)``,
``book(market, price_e8, now_ns)`` and ``healthy(market, now_ns)``. Live, ``CcxtFeed`` polls a
ccxt client of the hedge exchange (``fetch_funding_rate`` → Binance's ``premiumIndex``;
``fetch_order_book``). **Health** is the feed's own view of that exchange, per market: a
market is healthy when its last poll of both calls succeeded, fewer than ``failures_max``
polls in a row have failed, and the last success is at most ``stale_s`` old (its clock);
the maker **does not quote a market whose hedge exchange is unhealthy** (``skipped
["hedge_unhealthy"]``) and quotes again after the next successful poll. It is what an outside
agent can see for itself; the venue's published exchange health (``/health`` → ``hedging``)
is not read: the hedger fails over between exchanges on its own, the maker only prices.

In a backtest ``RecordedFeed`` serves a recorded funding series (CSV
``ts_ns,market,funding_rate_e9``, the rate in force from ``ts_ns``) or a constant rate, and a
synthetic book around the oracle price. Hedging each fill is the venue's hedger's job
(``adapters/hedging``, the maker listed in ``[hedging] makers``), not the strategy's; for the
backtest the strategy keeps a ``HedgeBook``: the hedge the hedger would hold (−1 × its net
base quantity per market, traded through the feed's book at each change), whose cost, funding
and mark-to-market ``hedge_pnl`` reports (``protocol.strategy.HedgePnl``).
"""

from __future__ import annotations

import asyncio
import bisect
import csv
import logging
import math
import random
import time
from pathlib import Path
from typing import NamedTuple, Protocol

from agents import sdk
from agents.makers import MakerAgent
from agents.risk import AccountBook
from engine import events as ev
from engine.units import FUNDING_INTERVAL_NS, NS_PER_HOUR, RATE_E9_MAX, div_half_even
from engine.views import RfqView
from protocol.orderbook import Levels, hedge_cost_bps, mid, spread_bps, walk
from protocol.strategy import BaseStrategy, HedgePnl, QuoteIntent

log = logging.getLogger("agentperp.agents.arbitrage")

BPS_E9 = 100_000  # 1 bp of a rate per 8h in e9 units


# -- pure pricing -----------------------------------------------------------------------------------

def scale_to_8h_e9(rate: float, interval: str | None = None) -> int:
    """A CEX funding rate (a fraction per ``interval``: "8h", "4h", "1h"; None = 8h) as the
    venue's rate per 8 h × 1e9."""
    hours = 8.0 if not interval else float(interval.rstrip("h"))
    return round(rate * (8.0 / hours) * 1e9)


def arbitrage_rate_e9(cex_rate_e9: int, maker_sign: int, cost_bps: float, holding_ns: int, edge_e9: int,
                      venue_fee_bps: float = 0.0) -> int:
    """The venue rate (e9 per 8h) that pays the hedge's funding and its round-trip cost
    (module docstring). ``maker_sign``: −1 the maker goes short on the venue (hedges long)."""
    funding_leg = -maker_sign * cex_rate_e9
    holding_ns = max(holding_ns, NS_PER_HOUR)
    cost_leg = 2 * (cost_bps + venue_fee_bps) * BPS_E9 * FUNDING_INTERVAL_NS / holding_ns
    return round(funding_leg + cost_leg + edge_e9)


def synthetic_book(price_e8: int, spread_bps: float, level_qty: float, levels: int = 20,
                   step_bps: float = 1.0) -> tuple[Levels, Levels]:
    """A symmetric book around ``price_e8``: ``levels`` levels of ``level_qty`` base units each
    side, ``step_bps`` apart, best bid/ask ``spread_bps`` apart."""
    mid = price_e8 / 1e8
    half = spread_bps / 2
    bids = [[mid * (1 - (half + i * step_bps) / 1e4), level_qty] for i in range(levels)]
    asks = [[mid * (1 + (half + i * step_bps) / 1e4), level_qty] for i in range(levels)]
    return bids, asks


# -- where the inputs come from -------------------------------------------------------------------

class HedgeFeed(Protocol):
    def funding_rate_e9(self, market: int, now_ns: int) -> int | None: ...

    def book(self, market: int, price_e8: int, now_ns: int) -> tuple[Levels, Levels] | None: ...

    def healthy(self, market: int, now_ns: int) -> bool: ...


def load_funding_series(path: Path | str) -> dict[int, list[tuple[int, int]]]:
    """CSV ``ts_ns,market,funding_rate_e9`` (header row) -> market -> [(ts_ns, rate_e9)], sorted."""
    series: dict[int, list[tuple[int, int]]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            series.setdefault(int(row["market"]), []).append((int(row["ts_ns"]), int(row["funding_rate_e9"])))
    return {market: sorted(rows) for market, rows in series.items()}


class RecordedFeed:
    """A recorded funding series (or a constant rate) and a synthetic book: for backtests."""

    def __init__(self, series: dict[int, list[tuple[int, int]]] | None = None, rate_e9: int = 100_000, *,
                 spread_bps: float = 1.0, level_qty: dict[int, float] | float = 0.0, step_bps: float = 1.0,
                 unhealthy: set[int] | None = None) -> None:
        self.series = series or {}
        self.times = {m: [t for t, _ in rows] for m, rows in self.series.items()}
        self.rate_e9, self.spread_bps, self.step_bps = rate_e9, spread_bps, step_bps
        self.level_qty = level_qty
        self.unhealthy = set(unhealthy or ())

    def funding_rate_e9(self, market: int, now_ns: int) -> int | None:
        rows = self.series.get(market)
        if not rows:
            return self.rate_e9
        i = bisect.bisect_right(self.times[market], now_ns) - 1
        return rows[max(i, 0)][1]

    def book(self, market: int, price_e8: int, now_ns: int) -> tuple[Levels, Levels] | None:
        qty = self.level_qty.get(market, 0.0) if isinstance(self.level_qty, dict) else self.level_qty
        # Default depth: 50 000 USDC a level at the price, enough for the venue's usual sizes.
        qty = qty or 50_000 / (price_e8 / 1e8)
        return synthetic_book(price_e8, self.spread_bps, qty, 20, self.step_bps)

    def healthy(self, market: int, now_ns: int) -> bool:
        return market not in self.unhealthy


class CcxtFeed:
    """Funding rates and books of a ccxt (async) client, polled by ``run()``; the maker reads
    the last values synchronously. ``symbols``: venue market id -> ccxt symbol
    (e.g. ``{0: "BTC/USDT:USDT"}``)."""

    def __init__(self, client, symbols: dict[int, str], *, refresh_s: float = 5.0, stale_s: float = 30.0,
                 failures_max: int = 3, depth: int = 20, clock=time.time) -> None:
        self.client, self.symbols = client, dict(symbols)
        self.refresh_s, self.stale_s, self.failures_max, self.depth = refresh_s, stale_s, failures_max, depth
        self.clock = clock
        self.rates: dict[int, int] = {}
        self.books: dict[int, tuple[Levels, Levels]] = {}
        self.updated_s: dict[int, float] = {}
        self.failures: dict[int, int] = {m: 0 for m in self.symbols}

    async def refresh(self) -> None:
        """Poll every market once; a failure counts against that market's health."""
        for market, symbol in self.symbols.items():
            try:
                funding = await self.client.fetch_funding_rate(symbol)
                book = await self.client.fetch_order_book(symbol, self.depth)
            except Exception as exc:  # any exchange or network error makes the market less healthy
                failures = self.failures[market] = self.failures.get(market, 0) + 1
                # once when it starts failing and once when it stops being quoted, not at every poll
                log.log(logging.WARNING if failures in (1, self.failures_max) else logging.DEBUG,
                        "hedge feed %s: %s (%d in a row%s)", symbol, exc, failures,
                        "; not quoted until a good poll" if failures == self.failures_max else "")
                continue
            if self.failures.get(market, 0) >= self.failures_max:
                log.warning("hedge feed %s: back after %d failed polls; quoted again", symbol, self.failures[market])
            self.rates[market] = scale_to_8h_e9(float(funding["fundingRate"]), funding.get("interval"))
            self.books[market] = ([list(level[:2]) for level in book["bids"]],
                                  [list(level[:2]) for level in book["asks"]])
            self.updated_s[market] = self.clock()
            self.failures[market] = 0

    async def run(self) -> None:
        """Poll every ``refresh_s`` (after the first ``refresh()``, which the caller awaits)."""
        while True:
            await asyncio.sleep(self.refresh_s)
            await self.refresh()

    def funding_rate_e9(self, market: int, now_ns: int) -> int | None:
        return self.rates.get(market)

    def book(self, market: int, price_e8: int, now_ns: int) -> tuple[Levels, Levels] | None:
        return self.books.get(market)

    def healthy(self, market: int, now_ns: int) -> bool:
        updated = self.updated_s.get(market)
        return (updated is not None and self.failures.get(market, 0) < self.failures_max
                and self.clock() - updated <= self.stale_s)


# -- the hedge, as the backtest counts it -------------------------------------------------------------

def fill_cost_bps(bids: Levels, asks: Levels, side: str, qty: float, fee_bps: float) -> float:
    """``hedge_cost_bps``, finite: what a book cannot fill is taken at its last level (the best
    estimate a thin book allows); a one-sided or empty book costs the fee alone."""
    cost = hedge_cost_bps(bids, asks, side, qty, fee_bps)
    if math.isfinite(cost):
        return cost
    m, levels = mid(bids, asks), asks if side == "buy" else bids
    if m is None or qty <= 0:
        return fee_bps
    w = walk(levels, qty, side=side)
    average = (w.filled * w.average + (qty - w.filled) * w.worst) / qty
    return spread_bps(bids, asks) / 2 + abs(average - levels[0][0]) / m * 1e4 + fee_bps


class HedgeBook:
    """The hedge the venue's hedger would hold for the maker, in floats (exchange units at the
    edge): per market ``-net`` base units of the maker's venue positions (size / entry, as
    ``adapters/hedging/exposure``), traded at the oracle price whenever the net changes, paying
    ``fill_cost_bps`` of the feed's book; it pays the feed's funding rate on its notional, pro
    rata to the nanosecond (long pays a positive rate); ``pnl`` marks it at the last price."""

    def __init__(self, feed: HedgeFeed, fee_bps: float) -> None:
        self.feed, self.fee_bps = feed, fee_bps
        self.qty: dict[int, float] = {}  # market → hedge position, base units (long +)
        self.cash_e6: dict[int, float] = {}  # market → −Σ traded qty × price
        self.prices_e8: dict[int, int] = {}
        self.accrued_ns: dict[int, int] = {}  # market → funding accrued up to
        self.cost_e6 = 0.0
        self.funding_e6 = 0.0
        self.trades = 0

    def mark(self, market: int, price_e8: int, now_ns: int) -> None:
        self._accrue(market, now_ns)
        self.prices_e8[market] = price_e8

    def trade_to(self, market: int, target: float, now_ns: int) -> None:
        """Bring the hedge of ``market`` to ``target`` base units at the last price."""
        self._accrue(market, now_ns)
        delta = target - self.qty.get(market, 0.0)
        price_e8 = self.prices_e8.get(market, 0)
        if abs(delta) < 1e-12 or price_e8 <= 0:
            return
        notional_e6 = abs(delta) * price_e8 / 100  # base units × USD × 1e6
        book = self.feed.book(market, price_e8, now_ns)
        cost_bps = fill_cost_bps(book[0], book[1], "buy" if delta > 0 else "sell", abs(delta),
                                 self.fee_bps) if book else self.fee_bps
        self.cost_e6 += notional_e6 * cost_bps / 1e4
        self.cash_e6[market] = self.cash_e6.get(market, 0.0) - delta * price_e8 / 100
        self.qty[market] = target
        self.trades += 1

    def _accrue(self, market: int, now_ns: int) -> None:
        qty, since = self.qty.get(market, 0.0), self.accrued_ns.get(market)
        if qty and since is not None and now_ns > since:
            rate_e9 = self.feed.funding_rate_e9(market, now_ns) or 0
            notional_e6 = qty * self.prices_e8.get(market, 0) / 100
            self.funding_e6 -= notional_e6 * rate_e9 / 1e9 * (now_ns - since) / FUNDING_INTERVAL_NS
        if since is None or now_ns > since:
            self.accrued_ns[market] = now_ns

    def pnl(self, now_ns: int) -> HedgePnl:
        for market in list(self.qty):
            self._accrue(market, now_ns)
        mark = sum(cash + self.qty.get(m, 0.0) * self.prices_e8.get(m, 0) / 100 for m, cash in self.cash_e6.items())
        return HedgePnl(round(self.cost_e6), round(self.funding_e6), round(mark))


# -- the strategy --------------------------------------------------------------------------------

class Quote(NamedTuple):
    """Why it quoted what it quoted (``ArbitrageMaker.last``)."""

    cex_rate_e9: int
    hedge_side: str
    cost_bps: float
    rate_e9: int


class ArbitrageMaker(BaseStrategy):
    """``feed``: a ``HedgeFeed`` (live: ``CcxtFeed``); without one, a ``RecordedFeed`` of
    ``funding_csv`` (or the constant ``cex_rate_e9``) with a synthetic book of ``spread_bps``.
    ``fee_bps``: the CEX taker fee; ``edge_e9``: what it keeps per 8h; ``holding_hours``:
    the expected life of a perpetual position; collateral is size / ``leverage``."""

    def __init__(self, seed: int = 0, *, feed: HedgeFeed | None = None, funding_csv: str | None = None,
                 cex_rate_e9: int = 100_000, spread_bps: float = 1.0, fee_bps: float = 4.0, edge_e9: int = 100_000,
                 holding_hours: float = 24.0, leverage: int = 5, jitter_e9: int = 20_000, valid_for_ms: int = 0,
                 risk_limit_e6: int = 500_000_000_000) -> None:
        super().__init__(seed)
        self.rng = random.Random(seed)
        if feed is None:
            feed = RecordedFeed(load_funding_series(funding_csv) if funding_csv else None, cex_rate_e9,
                                spread_bps=spread_bps)
        self.feed = feed
        self.fee_bps, self.edge_e9, self.jitter_e9 = fee_bps, edge_e9, jitter_e9
        self.holding_ns = round(holding_hours * NS_PER_HOUR)
        self.leverage, self.valid_for_ms, self.risk_limit_e6 = leverage, valid_for_ms, risk_limit_e6
        self.book = AccountBook()
        self.hedge = HedgeBook(self.feed, fee_bps)
        self.net_e9: dict[int, int] = {}  # market → its net base quantity × 1e9 on the venue (long +)
        self.skipped: dict[str, int] = {}
        self.last: Quote | None = None

    def _skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def price(self, rfq: RfqView, oracle_price_e8: int, now_ns: int) -> Quote | None:
        """The quote for ``rfq`` from the feed (None: do not quote, reason counted in ``skipped``)."""
        if not self.feed.healthy(rfq.market, now_ns):
            self._skip("hedge_unhealthy")
            return None
        cex = self.feed.funding_rate_e9(rfq.market, now_ns)
        book = self.feed.book(rfq.market, oracle_price_e8, now_ns)
        if cex is None or book is None:
            self._skip("no_hedge_data")
            return None
        maker_sign = -1 if rfq.side == "long" else 1
        hedge_side = "buy" if maker_sign < 0 else "sell"
        qty = rfq.size_e6 / 1e6 / (oracle_price_e8 / 1e8)
        cost = hedge_cost_bps(book[0], book[1], hedge_side, qty, self.fee_bps)
        if not math.isfinite(cost):
            self._skip("book_too_thin")
            return None
        venue_fee = self.config.markets[rfq.market].maker_fee_bps if self.config else 0
        rate = arbitrage_rate_e9(cex, maker_sign, cost, rfq.duration_ns or self.holding_ns, self.edge_e9, venue_fee)
        return Quote(cex, hedge_side, cost, rate)

    def on_rfq(self, rfq: RfqView, oracle_price_e8: int, now_ns: int) -> QuoteIntent | None:
        if oracle_price_e8 <= 0 or rfq.trader == self.agent:
            return None
        maker_sign = -1 if rfq.side == "long" else 1
        if abs(self.book.exposure_e6(rfq.market) + maker_sign * rfq.size_e6) > self.risk_limit_e6:
            self._skip("risk_limit")
            return None
        quote = self.last = self.price(rfq, oracle_price_e8, now_ns)
        if quote is None:
            return None
        jitter = self.rng.randint(-self.jitter_e9, self.jitter_e9) if self.jitter_e9 else 0
        rate_e9 = max(-RATE_E9_MAX, min(RATE_E9_MAX, quote.rate_e9 + jitter))
        if rate_e9 > rfq.max_funding_rate_e9:
            self._skip("above_max")
            return None
        leverage_max = self.config.markets[rfq.market].leverage_max if self.config else self.leverage
        return QuoteIntent(rate_e9, -(-rfq.size_e6 // max(1, min(self.leverage, leverage_max))), self.valid_for_ms)

    def on_start(self, config, agent: str) -> None:
        super().on_start(config, agent)
        self.book.agent = agent

    def on_event(self, event, now_ns: int) -> None:
        kind = type(event)
        if kind is ev.OracleUpdated:
            self.hedge.mark(event.market, event.price_e8, now_ns)
            return
        position = None  # one of its positions that this event opens, resizes or ends
        if kind is ev.PositionOpened and self.agent in (event.long_agent, event.short_agent):
            position = event.position_id
            if event.market not in self.hedge.prices_e8:
                self.hedge.mark(event.market, event.entry_price_e8, now_ns)
        elif kind in (ev.PositionClosed, ev.PositionLiquidated) and event.position_id in self.book.positions:
            position = event.position_id
        before = self._qty_e9(position)
        self.book.apply(event)  # its positions, hence its net exposure per market
        if position is not None:
            market = event.market if kind is ev.PositionOpened else before[0]
            net_e9 = self.net_e9[market] = self.net_e9.get(market, 0) + self._qty_e9(position)[1] - before[1]
            self.hedge.trade_to(market, -net_e9 / 1e9, now_ns)  # the hedger's ratio: 10 000 bps

    def hedge_pnl(self, now_ns: int) -> HedgePnl:
        """The hedge's cost, funding and mark so far (``protocol.strategy``: the backtest adds it)."""
        return self.hedge.pnl(now_ns)

    def _qty_e9(self, position_id: int | None) -> tuple[int, int]:
        """(market, signed base quantity × 1e9) of one of its open positions, as the hedger counts
        it (``adapters/hedging/exposure.qty_e9``: size at entry); (-1, 0) if not open."""
        p = self.book.positions.get(position_id) if position_id is not None else None
        if p is None:
            return -1, 0
        market, sign, size_e6, _, entry_price_e8 = p[:5]
        return market, sign * div_half_even(size_e6 * 10**11, entry_price_e8)

    def explain(self) -> dict:
        return {"skipped": dict(sorted(self.skipped.items())), "hedge_trades": self.hedge.trades}


class ArbitrageAgent:
    """Runs an ``ArbitrageMaker`` live on a ``CcxtFeed``: the feed's first poll, then its polling
    task beside the ``MakerAgent``; the feed's ccxt client is closed on the way out."""

    def __init__(self, client: sdk.Client, strategy: ArbitrageMaker, feed: CcxtFeed):
        self.feed = feed
        strategy.feed = strategy.hedge.feed = feed
        self.maker = MakerAgent(client, strategy)

    async def run(self) -> None:
        poller = None
        try:
            await self.feed.refresh()
            poller = asyncio.create_task(self.feed.run(), name="arbitrage-feed")
            await self.maker.run()
        finally:
            if poller is not None:
                poller.cancel()
                await asyncio.gather(poller, return_exceptions=True)
            await self.feed.client.close()
