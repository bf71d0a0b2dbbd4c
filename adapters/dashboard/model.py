"""The dashboard's rolling series: fed with every durable batch by the hub (``Hub.listen``),
each one bounded. Appending is all the loop pays per event; rendering, statistics and
forecasts happen when a page or ``/metrics`` asks, or on the background worker.
"""

from __future__ import annotations

from collections import deque

from engine import events as ev

PRICE_POINTS_MAX = 3_600  # oracle prices kept per market, one per second (the last): an hour of history
PRICE_POINT_NS = 1_000_000_000
RATES_MAX = 500  # negotiated funding rates (fills) kept per market
FLOW_EVENTS_MAX = 200  # RFQ → quote → fill events kept for the page's flow (all markets)
LIQUIDATIONS_MAX = 100
FLOW_BUCKET_NS = 10_000_000_000  # flow counted per 10 s bucket for its z-score
FLOW_BUCKETS_MAX = 360  # one hour of buckets per market
WRITE_SAMPLES_MAX = 1_000  # journal write + fsync times of the last batches

FLOW_TYPES = (ev.RfqOpened, ev.RfqClosed, ev.QuoteSubmitted, ev.PositionOpened, ev.PositionClosed)


class Model:
    """Bounded series per market, from engine events (integers in, floats only for statistics)."""

    def __init__(self, symbols: list[str]):
        self.symbols = list(symbols)
        n = len(symbols)
        # (ts_ns, price_e8, conf_e8, source) per market
        self.prices: list[deque] = [deque(maxlen=PRICE_POINTS_MAX) for _ in range(n)]
        # (ts_ns, rate_e9) per market
        self.rates: list[deque] = [deque(maxlen=RATES_MAX) for _ in range(n)]
        # [bucket, count] per market; the last one is the bucket being filled
        self.flow_buckets: list[deque] = [deque(maxlen=FLOW_BUCKETS_MAX) for _ in range(n)]
        self.flow: deque = deque(maxlen=FLOW_EVENTS_MAX)  # engine events, rendered when asked
        self.liquidations: deque = deque(maxlen=LIQUIDATIONS_MAX)
        self.write_ms: deque = deque(maxlen=WRITE_SAMPLES_MAX)
        self.rfq_market: dict[int, int] = {}  # open RFQs' markets, for quotes (pruned at fill/close)
        self.rfq_market_max = 100_000
        self.last_seq = 0
        self.events_seen = 0

    def on_events(self, events: list) -> None:
        """Take a durable batch's events (in seq order)."""
        for event in events:
            kind = type(event)
            if kind is ev.OracleUpdated:
                prices = self.prices[event.market]
                point = (event.publish_ns, event.price_e8, event.conf_e8, event.source)
                if prices and prices[-1][0] // PRICE_POINT_NS == event.publish_ns // PRICE_POINT_NS:
                    prices[-1] = point  # one point per second: history bounded in time, not by the feed's rate
                else:
                    prices.append(point)
            elif kind in FLOW_TYPES or kind is ev.QuoteReleased:
                self._flow(event, kind)
            elif kind is ev.PositionLiquidated:
                self.liquidations.append(event)
        if events:
            self.last_seq = events[-1].seq
            self.events_seen += len(events)

    def _flow(self, event, kind) -> None:
        if kind is ev.QuoteReleased:
            return  # not shown in the flow: every fill releases the losing quotes
        if kind is ev.RfqOpened:
            if len(self.rfq_market) < self.rfq_market_max:
                self.rfq_market[event.rfq_id] = event.market
            market = event.market
        elif kind is ev.QuoteSubmitted:
            market = self.rfq_market.get(event.rfq_id)
        elif kind is ev.RfqClosed:
            market = self.rfq_market.pop(event.rfq_id, None)
        elif kind is ev.PositionOpened:
            market = event.market
            self.rfq_market.pop(event.rfq_id, None)
            self.rates[market].append((event.ts_ns, event.funding_rate_e9))
        else:  # PositionClosed: no market on the event, shown in the flow only
            market = None
        self.flow.append(event)
        if market is not None:
            self._count(market, event.ts_ns)

    def _count(self, market: int, ts_ns: int) -> None:
        buckets = self.flow_buckets[market]
        bucket = ts_ns // FLOW_BUCKET_NS
        if buckets and buckets[-1][0] == bucket:
            buckets[-1][1] += 1
            return
        if buckets:  # empty buckets in between count as zero flow (bounded by the deque)
            for gap in range(max(buckets[-1][0] + 1, bucket - FLOW_BUCKETS_MAX), bucket):
                buckets.append([gap, 0])
        buckets.append([bucket, 1])

    def complete_flow_counts(self, market: int, now_ns: int) -> list[float]:
        """Flow per bucket up to the last complete one before ``now_ns`` (zeros for quiet buckets)."""
        current = now_ns // FLOW_BUCKET_NS
        counts = [float(c) for b, c in self.flow_buckets[market] if b < current]
        buckets = self.flow_buckets[market]
        if buckets and buckets[-1][0] < current - 1:  # quiet since: those buckets are zeros
            counts += [0.0] * min(current - 1 - buckets[-1][0], FLOW_BUCKETS_MAX)
        return counts[-FLOW_BUCKETS_MAX:]

    def price_floats(self, market: int) -> list[tuple[int, float]]:
        return [(ts, p / 1e8) for ts, p, _, _ in self.prices[market]]

    def rate_floats(self, market: int) -> list[float]:
        return [r / 1e9 for _, r in self.rates[market]]
