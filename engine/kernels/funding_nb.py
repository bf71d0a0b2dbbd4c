"""Funding at an 8h boundary over all open positions (numba). Twin: ``reference.settle_funding``."""

import numba as nb

from engine.risk import formulas
from engine.state import OPEN

_funding_long_to_short_e6 = formulas.funding_long_to_short_e6


@nb.njit(cache=True, nogil=True)
def settle_funding_nb(status, size_e6, rate_e9, taker_is_long, margin_long_e6, margin_short_e6,
                      last_funding_ns, n_rows, boundary_ns, out_rows, out_long_to_short_e6):
    """Funding accrued from each open position's ``last_funding_ns`` to ``boundary_ns``.

    Writes the participating rows (ascending) and their signed transfers (> 0: long pays
    short) without touching the state; returns ``(count, shortfall_e6)``.
    """
    count = 0
    shortfall_total = 0
    for row in range(n_rows):
        if status[row] != OPEN or last_funding_ns[row] >= boundary_ns:
            continue
        transfer, shortfall = _funding_long_to_short_e6(
            size_e6[row], rate_e9[row], taker_is_long[row] != 0, boundary_ns - last_funding_ns[row],
            margin_long_e6[row], margin_short_e6[row])
        out_rows[count] = row
        out_long_to_short_e6[count] = transfer
        shortfall_total += shortfall
        count += 1
    return count, shortfall_total
