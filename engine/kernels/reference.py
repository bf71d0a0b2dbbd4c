"""Pure-Python twins of the numba kernels, for differential tests and the benchmark's ratio.

Same contracts as the ``*_nb`` kernels; they read the columns as Python lists and call the
same formulas (``engine.risk.formulas``) as plain Python.
"""

import math

from engine.risk import formulas as _compiled
from engine.risk.formulas import SIDE_NONE
from engine.state import OPEN


class _PlainFormulas:
    """The formulas as plain Python (``py_func``; the functions themselves without JIT)."""

    def __getattr__(self, name):
        function = getattr(_compiled, name)
        return getattr(function, "py_func", function)


formulas = _PlainFormulas()


def sweep_market(status, market, size_e6, size_open_e6, entry_price_e8, margin_long_e6, margin_short_e6,
                 margin_open_long_e6, margin_open_short_e6, n_rows, want_market, price_e8, maintenance_bps,
                 out_equity_long_e6, out_equity_short_e6, out_liq_price_long_e8, out_liq_price_short_e8,
                 out_liq_side):
    cols = [c.tolist() for c in (status, market, size_e6, size_open_e6, entry_price_e8, margin_long_e6,
                                 margin_short_e6, margin_open_long_e6, margin_open_short_e6)]
    status, market, size_e6, size_open_e6, entry, m_long, m_short, mo_long, mo_short = cols
    liquidatable = 0
    for row in range(n_rows):
        if status[row] != OPEN or market[row] != want_market:
            out_liq_side[row] = SIDE_NONE
            continue
        size = size_e6[row]
        side, pnl = formulas.liquidatable_side(m_long[row], m_short[row], mo_long[row], mo_short[row],
                                               size_open_e6[row], size, entry[row], price_e8, maintenance_bps)
        out_equity_long_e6[row] = m_long[row] + pnl
        out_equity_short_e6[row] = m_short[row] - pnl
        if side != SIDE_NONE:
            liquidatable += 1
        out_liq_side[row] = side
        out_liq_price_long_e8[row] = formulas.liquidation_price_long_e8(
            m_long[row], mo_long[row], size_open_e6[row], size, entry[row], maintenance_bps)
        out_liq_price_short_e8[row] = formulas.liquidation_price_short_e8(
            m_short[row], mo_short[row], size_open_e6[row], size, entry[row], maintenance_bps)
    return liquidatable


def watch_market(status, market, size_e6, size_open_e6, entry_price_e8, margin_long_e6, margin_short_e6,
                 margin_open_long_e6, margin_open_short_e6, flagged_ns, band_low_e8, band_high_e8, bands_hold,
                 n_rows, want_market, price_e8, maintenance_bps, out_flag_rows, out_clear_rows):
    cols = [c.tolist() for c in (status, market, size_e6, size_open_e6, entry_price_e8, margin_long_e6,
                                 margin_short_e6, margin_open_long_e6, margin_open_short_e6, flagged_ns,
                                 band_low_e8, band_high_e8)]
    status, market, size_e6, size_open_e6, entry, m_long, m_short, mo_long, mo_short, flagged_ns, low, high = cols
    flag, clear = [], []
    for row in range(n_rows):
        if status[row] != OPEN or market[row] != want_market:
            continue
        if bands_hold and low[row] < price_e8 < high[row]:
            side = SIDE_NONE
        else:
            side = formulas.liquidatable_side(m_long[row], m_short[row], mo_long[row], mo_short[row],
                                              size_open_e6[row], size_e6[row], entry[row], price_e8,
                                              maintenance_bps)[0]
        if side != SIDE_NONE:
            if flagged_ns[row] == 0:
                flag.append(row)
        elif flagged_ns[row] != 0:
            clear.append(row)
    out_flag_rows[:len(flag)] = flag
    out_clear_rows[:len(clear)] = clear
    return len(flag), len(clear)


def settle_funding(status, size_e6, rate_e9, taker_is_long, margin_long_e6, margin_short_e6, last_funding_ns,
                   n_rows, boundary_ns, out_rows, out_long_to_short_e6):
    cols = [c.tolist() for c in (status, size_e6, rate_e9, taker_is_long, margin_long_e6, margin_short_e6,
                                 last_funding_ns)]
    status, size_e6, rate_e9, taker_is_long, m_long, m_short, last = cols
    count = 0
    shortfall_total = 0
    for row in range(n_rows):
        if status[row] != OPEN or last[row] >= boundary_ns:
            continue
        transfer, shortfall = formulas.funding_long_to_short_e6(
            size_e6[row], rate_e9[row], taker_is_long[row] != 0, boundary_ns - last[row], m_long[row], m_short[row])
        out_rows[count] = row
        out_long_to_short_e6[count] = transfer
        shortfall_total += shortfall
        count += 1
    return count, shortfall_total


def position_bands(status, market, size_e6, size_open_e6, entry_price_e8, margin_long_e6, margin_short_e6,
                   margin_open_long_e6, margin_open_short_e6, n_rows, maintenance_bps_of_market,
                   out_band_low_e8, out_band_high_e8):
    cols = [c.tolist() for c in (status, market, size_e6, size_open_e6, entry_price_e8, margin_long_e6,
                                 margin_short_e6, margin_open_long_e6, margin_open_short_e6)]
    status, market, size_e6, size_open_e6, entry, m_long, m_short, mo_long, mo_short = cols
    for row in range(n_rows):
        if status[row] != OPEN:
            continue
        out_band_low_e8[row], out_band_high_e8[row] = formulas.safe_band_e8(
            m_long[row], m_short[row], mo_long[row], mo_short[row], size_open_e6[row], size_e6[row], entry[row],
            int(maintenance_bps_of_market[market[row]]))


def band_of_rows(status, market, band_low_e8, band_high_e8, n_rows, want_market):
    low, high = -math.inf, math.inf
    for row in range(n_rows):
        if status[row] != OPEN or market[row] != want_market:
            continue
        low, high = max(low, float(band_low_e8[row])), min(high, float(band_high_e8[row]))
    return low, high
