"""Sweep one market's positions at a price: equity, liquidatable side, liquidation prices;
and the band of prices at which a sweep would find nothing.

Numba; twins: ``reference.sweep_market``, ``reference.watch_market``,
``reference.position_bands`` and ``reference.band_of_rows``.
"""

import math

import numba as nb
import numpy as np

from engine.risk import formulas
from engine.risk.formulas import SIDE_NONE
from engine.state import OPEN

_liquidatable_side = formulas.liquidatable_side
_liq_long = formulas.liquidation_price_long_e8
_liq_short = formulas.liquidation_price_short_e8
_safe_band = formulas.safe_band_e8


@nb.njit(cache=True, nogil=True, parallel=True)
def sweep_market_nb(status, market, size_e6, size_open_e6, entry_price_e8,
                    margin_long_e6, margin_short_e6, margin_open_long_e6, margin_open_short_e6,
                    n_rows, want_market, price_e8, maintenance_bps,
                    out_equity_long_e6, out_equity_short_e6, out_liq_price_long_e8,
                    out_liq_price_short_e8, out_liq_side):
    """Fill the ``out_*`` arrays for the open positions of ``want_market`` at ``price_e8``.

    ``out_liq_side`` is SIDE_LONG/SIDE_SHORT for a side below maintenance (the one further
    below if both are), SIDE_NONE otherwise and for rows of other markets. Returns how many
    positions are liquidatable. Runs on all cores: it is the bulk view for ops and risk
    reports; the engine's per-update path is ``watch_market_nb`` (one core, no outputs).
    """
    liquidatable = 0
    for row in nb.prange(n_rows):  # rows are independent: the result does not depend on threads
        if status[row] != OPEN or market[row] != want_market:
            out_liq_side[row] = SIDE_NONE
            continue
        size = size_e6[row]
        entry = entry_price_e8[row]
        side, pnl = _liquidatable_side(margin_long_e6[row], margin_short_e6[row], margin_open_long_e6[row],
                                       margin_open_short_e6[row], size_open_e6[row], size, entry, price_e8,
                                       maintenance_bps)
        out_equity_long_e6[row] = margin_long_e6[row] + pnl
        out_equity_short_e6[row] = margin_short_e6[row] - pnl
        if side != SIDE_NONE:
            liquidatable += 1
        out_liq_side[row] = side
        out_liq_price_long_e8[row] = _liq_long(margin_long_e6[row], margin_open_long_e6[row], size_open_e6[row], size, entry, maintenance_bps)
        out_liq_price_short_e8[row] = _liq_short(margin_short_e6[row], margin_open_short_e6[row], size_open_e6[row], size, entry, maintenance_bps)
    return liquidatable


@nb.njit(cache=True, nogil=True)
def watch_market_nb(status, market, size_e6, size_open_e6, entry_price_e8, margin_long_e6, margin_short_e6,
                    margin_open_long_e6, margin_open_short_e6, flagged_ns, band_low_e8, band_high_e8, bands_hold,
                    n_rows, want_market, price_e8, maintenance_bps, out_flag_rows, out_clear_rows):
    """Rows of ``want_market`` liquidatable at ``price_e8`` and not yet flagged, and rows
    flagged but no longer liquidatable (ascending). Returns ``(n_flag, n_clear)``.

    The engine's path for every oracle update: the sweep's verdict without its outputs.
    ``bands_hold``: ``band_*_e8`` are the rows' safe bands for these margins, so a row whose
    band holds the price is not liquidatable without the exact test (most rows: the test's
    divisions were ~2/3 of the pass); False (margins about to change) tests every row.
    """
    n_flag = 0
    n_clear = 0
    for row in range(n_rows):
        if status[row] != OPEN or market[row] != want_market:
            continue
        if bands_hold and band_low_e8[row] < price_e8 < band_high_e8[row]:
            side = SIDE_NONE
        else:
            side = _liquidatable_side(margin_long_e6[row], margin_short_e6[row], margin_open_long_e6[row],
                                      margin_open_short_e6[row], size_open_e6[row], size_e6[row],
                                      entry_price_e8[row], price_e8, maintenance_bps)[0]
        if side != SIDE_NONE:
            if flagged_ns[row] == 0:
                out_flag_rows[n_flag] = row
                n_flag += 1
        elif flagged_ns[row] != 0:
            out_clear_rows[n_clear] = row
            n_clear += 1
    return n_flag, n_clear


@nb.njit(cache=True, nogil=True)
def position_bands_nb(status, market, size_e6, size_open_e6, entry_price_e8, margin_long_e6, margin_short_e6,
                      margin_open_long_e6, margin_open_short_e6, n_rows, maintenance_bps_of_market,
                      out_band_low_e8, out_band_high_e8):
    """Each open row's safe band (``formulas.safe_band_e8``) into ``out_band_*_e8``, its
    market's maintenance from ``maintenance_bps_of_market``; other rows are left as they are."""
    for row in range(n_rows):
        if status[row] != OPEN:
            continue
        low, high = _safe_band(margin_long_e6[row], margin_short_e6[row], margin_open_long_e6[row],
                               margin_open_short_e6[row], size_open_e6[row], size_e6[row], entry_price_e8[row],
                               maintenance_bps_of_market[market[row]])
        out_band_low_e8[row] = low
        out_band_high_e8[row] = high


@nb.njit(cache=True, nogil=True)
def band_of_rows_nb(status, market, band_low_e8, band_high_e8, n_rows, want_market):
    """``(low, high)``: the intersection of the bands of ``want_market``'s open rows (as
    ``position_bands_nb`` left them); ``(-inf, inf)`` when it has none."""
    low = -math.inf
    high = math.inf
    for row in range(n_rows):
        if status[row] != OPEN or market[row] != want_market:
            continue
        low = max(low, band_low_e8[row])
        high = min(high, band_high_e8[row])
    return low, high


def sweep_outputs(n_rows):
    """Allocate the output arrays of ``sweep_market_nb`` for ``n_rows`` rows."""
    return (np.zeros(n_rows, np.int64), np.zeros(n_rows, np.int64), np.zeros(n_rows, np.float64),
            np.zeros(n_rows, np.float64), np.zeros(n_rows, np.int8))
