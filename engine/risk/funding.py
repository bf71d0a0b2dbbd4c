"""Funding at the 8h UTC boundaries (DESIGN §4 Funding).

The negotiated rate is fixed for the life of a position; the taker pays the maker
``size × rate`` per interval, pro rata to the nanosecond, from margin to margin. A payer
short of margin pays what it has and becomes liquidatable.
"""

from __future__ import annotations

import numpy as np

from engine import events as ev
from engine.context import Ctx
from engine.kernels.funding_nb import settle_funding_nb
from engine.risk import liquidation
from engine.state import OPEN, State
from engine.units import FUNDING_INTERVAL_NS


def next_boundary(state: State, now_ns: int) -> int | None:
    """The next boundary to settle at or before ``now_ns``, if any.

    Boundaries are multiples of 8h since the epoch (00:00, 08:00, 16:00 UTC). The clock
    starts at the first boundary after the earliest open position opened; with no open
    position there is nothing to settle and the clock waits.
    """
    t = state.positions
    if t.live == 0:
        return None
    last_ns = state.funding_boundary_ns
    if last_ns == 0:
        # No position opened before ``opened_ns_low``: while its interval runs, the clock
        # cannot start yet, and the scan for the earliest open position is not needed.
        if state.opened_ns_low - state.opened_ns_low % FUNDING_INTERVAL_NS + FUNDING_INTERVAL_NS > now_ns:
            return None
        opened_ns = int(t.column("opened_ns")[t.column("status") == OPEN].min())
        last_ns = opened_ns - opened_ns % FUNDING_INTERVAL_NS
    boundary_ns = last_ns + FUNDING_INTERVAL_NS
    return boundary_ns if boundary_ns <= now_ns else None


def decide_boundary(state: State, boundary_ns: int, ctx: Ctx) -> list:
    """Funding of every open position up to ``boundary_ns``, then the liquidation watch
    of each market at the margins funding leaves."""
    t = state.positions
    n_rows = t.high_water
    rows = np.empty(n_rows, np.int64)
    amounts = np.empty(n_rows, np.int64)
    count, shortfall_e6 = settle_funding_nb(t.status, t.size_e6, t.rate_e9, t.taker_is_long, t.margin_long_e6,
                                            t.margin_short_e6, t.last_funding_ns, n_rows, boundary_ns, rows, amounts)
    rows, amounts = rows[:count], amounts[:count]
    events: list = [ev.FundingSettled(ctx.seq(), ctx.ts_ns, ctx.cmd_id, boundary_ns=boundary_ns,
                                      position_ids=t.position_id[rows].tolist(), long_to_short_e6=amounts.tolist(),
                                      shortfall_e6=int(shortfall_e6))]
    if count:
        margin_long_e6 = t.margin_long_e6.copy()
        margin_short_e6 = t.margin_short_e6.copy()
        margin_long_e6[rows] -= amounts
        margin_short_e6[rows] += amounts
        for market in range(len(state.config.markets)):
            price_e8 = state.oracle.price_e8[market]
            if price_e8:
                watch = liquidation.watch(state, market, price_e8, ctx, margin_long_e6, margin_short_e6)
                if watch is not None:
                    events.append(watch)
    return events
