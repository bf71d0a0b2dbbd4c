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

Each open position's own band is kept too (the positions' derived columns ``band_low_e8`` /
``band_high_e8``, set wherever its size or margins change: ``narrow``, ``refresh``): a
market's band is then the intersection of stored numbers, and a sweep tests exactly only the
rows whose own band does not hold the price (``liquidation.watch``).
"""

from __future__ import annotations

import numpy as np

from engine.kernels.sweep_nb import band_of_rows_nb, position_bands_nb
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
    """Set the position's own band, and narrow its market's to it (apply only)."""
    t = state.positions.v
    market = t.market[row]
    m = state.config.markets[market]
    low, high = formula_calls.safe_band_e8(t.margin_long_e6[row], t.margin_short_e6[row],
                                           t.margin_open_long_e6[row], t.margin_open_short_e6[row],
                                           t.size_open_e6[row], t.size_e6[row], t.entry_price_e8[row],
                                           m.maintenance_of_initial_bps)
    t.band_low_e8[row] = low
    t.band_high_e8[row] = high
    if low > state.safe_low_e8[market]:
        state.safe_low_e8[market] = low
    if high < state.safe_high_e8[market]:
        state.safe_high_e8[market] = high


def recompute(state: State, market: int) -> None:
    """Set the band of ``market`` exactly from its open positions' bands (apply only)."""
    t = state.positions
    state.safe_low_e8[market], state.safe_high_e8[market] = band_of_rows_nb(
        t.status, t.market, t.band_low_e8, t.band_high_e8, t.high_water, market)


def refresh(state: State) -> None:
    """Compute every open position's band, then every market's: after funding moved the
    margins of many, and on a state imported without them (apply only)."""
    t = state.positions
    compute_position_bands(state, t.band_low_e8, t.band_high_e8)
    for market in range(len(state.config.markets)):
        recompute(state, market)


def compute_position_bands(state: State, out_low_e8, out_high_e8) -> None:
    """Each open position's band, from its columns, into the rows of ``out_*_e8``."""
    t = state.positions
    maintenance_bps_of_market = np.array([m.maintenance_of_initial_bps for m in state.config.markets], np.int64)
    position_bands_nb(t.status, t.market, t.size_e6, t.size_open_e6, t.entry_price_e8, t.margin_long_e6,
                      t.margin_short_e6, t.margin_open_long_e6, t.margin_open_short_e6, t.high_water,
                      maintenance_bps_of_market, out_low_e8, out_high_e8)
