"""Example strategies for ``backtest`` (see ``protocol.strategy`` for the interface)."""

from __future__ import annotations

import random

from engine import events as ev
from engine.views import PositionView, RfqView
from protocol.strategy import BaseStrategy, QuoteIntent


class SpreadMaker(BaseStrategy):
    """Quote every RFQ at a fixed funding rate plus seeded jitter, with collateral a fixed
    fraction of the size, up to a cap of open positions.

    ``rate_e9`` (default 0.1% per 8h), ``jitter_e9`` (uniform ±, default 0.05%),
    ``collateral_bps`` of size (default 20%, never below size / max leverage),
    ``open_max`` positions (default 200). Passes when the RFQ's max rate is below its rate.
    """

    def __init__(self, seed: int = 0, rate_e9: int = 1_000_000, jitter_e9: int = 500_000,
                 collateral_bps: int = 2_000, open_max: int = 200) -> None:
        super().__init__(seed)
        self.rng = random.Random(seed)
        self.rate_e9 = rate_e9
        self.jitter_e9 = jitter_e9
        self.collateral_bps = collateral_bps
        self.open_max = open_max
        self.open: set[int] = set()

    def on_rfq(self, rfq: RfqView, oracle_price_e8: int, now_ns: int) -> QuoteIntent | None:
        if len(self.open) >= self.open_max or oracle_price_e8 == 0:
            return None
        rate_e9 = self.rate_e9 + self.rng.randint(-self.jitter_e9, self.jitter_e9)
        if rate_e9 > rfq.max_funding_rate_e9:
            return None
        leverage_max = self.config.markets[rfq.market].leverage_max
        floor_e6 = -(-rfq.size_e6 // leverage_max)
        collateral_e6 = max(rfq.size_e6 * self.collateral_bps // 10_000, floor_e6)
        return QuoteIntent(rate_e9, collateral_e6, 0)

    def on_fill(self, position: PositionView, now_ns: int) -> None:
        self.open.add(position.position_id)

    def on_event(self, event, now_ns: int) -> None:
        kind = type(event)
        if kind is ev.PositionLiquidated or (kind is ev.PositionClosed and event.remaining_size_e6 == 0):
            self.open.discard(event.position_id)
