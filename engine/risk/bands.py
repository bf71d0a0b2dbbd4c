"""Safe bands: which oracle updates can skip the liquidation sweep (DESIGN §4 Mark to market).

Every oracle update must flag the positions of its market that became liquidatable and
clear those that recovered. Most updates find nothing, and a sweep over every position is
the costliest step of the engine. So the state keeps, per market, a band of prices at which
no open position of the market can be liquidatable (``formulas.safe_band_e8`` of each,
intersected). When no position of the market is flagged and the new price is strictly
inside its market's band, the sweep would find nothing, and is skipped.

The band is derived data, kept conservative: ``apply`` narrows it with every position whose
size or margins change (closing one never widens it), and recomputes it exactly after
funding and whenever a price lands outside it. It never changes what ``decide`` returns.
"""

from __future__ import annotations

from engine.kernels.sweep_nb import market_band_nb
from engine.risk import formula_calls
from engine.state import State


def inside(state: State, market: int, price_e8: int) -> bool:
    """Whether ``price_e8`` lies strictly inside ``market``'s band.

    The band's ends are floats (±inf, or ``formulas.safe_band_e8``'s); a price is an int
    below 2**53 (``PRICE_E8_MAX``), so it converts to a float exactly and comparing the two
    floats is comparing the numbers — what the compiled engine does (bands.pxd), where
    Python compares a float with a multi-digit int by splitting the int (``frexp``)."""
    low, high = state.safe_low_e8[market], state.safe_high_e8[market]
    return low < price_e8 < high


def skips_sweep(state: State, market: int, price_e8: int) -> bool:
    """True when a sweep of ``market`` at ``price_e8`` is certain to flag and clear nothing:
    the price is inside the band and no position of the market is flagged (a flagged one
    might recover, and only the sweep says so)."""
    if not inside(state, market, price_e8):
        return False
    if not state.flagged:
        return True
    v, rows = state.positions.v, state.position_row
    for position_id in state.flagged:  # a loop, not all(...): no closure, so the compiled engine can make it cpdef
        if v.market[rows[position_id]] == market:
            return False
    return True


def narrow(state: State, row: int) -> None:
    """Narrow the band of the position's market to the position's own (apply only)."""
    t = state.positions.v
    market = t.market[row]
    m = state.config.markets[market]
    low, high = formula_calls.safe_band_e8(t.margin_long_e6[row], t.margin_short_e6[row],
                                           t.margin_open_long_e6[row], t.margin_open_short_e6[row],
                                           t.size_open_e6[row], t.size_e6[row], t.entry_price_e8[row],
                                           m.maintenance_of_initial_bps)
    if low > state.safe_low_e8[market]:
        state.safe_low_e8[market] = low
    if high < state.safe_high_e8[market]:
        state.safe_high_e8[market] = high


def recompute(state: State, market: int) -> None:
    """Set the band of ``market`` exactly from its open positions (apply only)."""
    t = state.positions
    state.safe_low_e8[market], state.safe_high_e8[market] = market_band_nb(
        t.status, t.market, t.size_e6, t.size_open_e6, t.entry_price_e8, t.margin_long_e6, t.margin_short_e6,
        t.margin_open_long_e6, t.margin_open_short_e6, t.high_water, market,
        state.config.markets[market].maintenance_of_initial_bps)
