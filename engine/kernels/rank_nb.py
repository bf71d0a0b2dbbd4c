"""Rank the live quotes of one RFQ (numba). Twin: ``reference.best_quote_row``."""

import numba as nb

from engine.state import LIVE


@nb.njit(cache=True, nogil=True)
def best_quote_row_nb(status, rfq_id, rate_e9, created_ns, quote_id, expires_ns, n_rows, want_rfq_id, now_ns):
    """Row of the best live, unexpired quote of ``want_rfq_id``, or -1 if there is none.

    Best = lowest funding rate (the taker pays it), then earliest, then lowest quote id.
    """
    best = -1
    for row in range(n_rows):
        if status[row] != LIVE or rfq_id[row] != want_rfq_id or expires_ns[row] <= now_ns:
            continue
        if best < 0:
            best = row
            continue
        if rate_e9[row] != rate_e9[best]:
            if rate_e9[row] < rate_e9[best]:
                best = row
        elif created_ns[row] != created_ns[best]:
            if created_ns[row] < created_ns[best]:
                best = row
        elif quote_id[row] < quote_id[best]:
            best = row
    return best
