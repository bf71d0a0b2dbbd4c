"""Closing out (part of) a position: accrued funding, then PnL between the margins.

One place for the money of every close — by a party, at a fixed duration's end, and by
liquidation (DESIGN §4 Closing and expiry, Liquidation).
"""

from __future__ import annotations

from engine.events import FREE, INSURANCE, MARGIN_LONG, MARGIN_SHORT, Transfer
from engine.context import transfer
from engine.risk import formula_calls
from engine.state import State
from engine.units import BPS_SCALE, div_half_even


class CloseOut:
    """The numbers of one close-out; the margins are what is left after funding and PnL."""

    __slots__ = ("funding_long_to_short_e6", "closed_size_e6", "pnl_long_e6", "insurance_e6", "bad_debt_e6",
                 "margin_long_e6", "margin_short_e6")


def close_out(state: State, row: int, price_e8: int, fraction_bps: int, now_ns: int,
              out: list[Transfer]) -> CloseOut:
    """Settle funding accrued to ``now_ns``, then the PnL of ``fraction_bps`` of the size.

    The loser pays the winner what it owes, capped by its whole margin; the insurance fund
    covers the shortfall as far as it goes and the rest is bad debt (the winner gets less).
    Appends the transfers to ``out``; returns the numbers.
    """
    v = state.positions.v
    position_id = v.position_id[row]
    size_e6 = v.size_e6[row]
    margin_long_e6 = v.margin_long_e6[row]
    margin_short_e6 = v.margin_short_e6[row]
    result = CloseOut()

    funding = 0
    elapsed_ns = now_ns - v.last_funding_ns[row]
    if elapsed_ns > 0:
        funding, _unpaid = formula_calls.funding_long_to_short_e6(size_e6, v.rate_e9[row], bool(v.taker_is_long[row]),
                                                                  elapsed_ns, margin_long_e6, margin_short_e6)
        transfer(out, MARGIN_LONG, position_id, MARGIN_SHORT, position_id, funding, "funding")
        margin_long_e6 -= funding
        margin_short_e6 += funding
    result.funding_long_to_short_e6 = funding

    closed_size_e6 = size_e6 if fraction_bps == BPS_SCALE else div_half_even(size_e6 * fraction_bps, BPS_SCALE)
    pnl = formula_calls.pnl_long_e6(closed_size_e6, v.entry_price_e8[row], price_e8)
    if pnl >= 0:  # the short owes the long
        loser_margin, loser, winner = margin_short_e6, MARGIN_SHORT, MARGIN_LONG
    else:
        loser_margin, loser, winner = margin_long_e6, MARGIN_LONG, MARGIN_SHORT
    owed = abs(pnl)
    paid = min(owed, loser_margin)
    covered = min(owed - paid, state.insurance_e6)
    transfer(out, loser, position_id, winner, position_id, paid, "pnl")
    transfer(out, INSURANCE, "", winner, position_id, covered, "insurance")
    received = paid + covered
    if pnl >= 0:
        margin_short_e6 -= paid
        margin_long_e6 += received
    else:
        margin_long_e6 -= paid
        margin_short_e6 += received

    result.closed_size_e6 = closed_size_e6
    result.pnl_long_e6 = pnl
    result.insurance_e6 = covered
    result.bad_debt_e6 = owed - received
    result.margin_long_e6 = margin_long_e6
    result.margin_short_e6 = margin_short_e6
    return result


def return_margins(state: State, row: int, long_e6: int, short_e6: int, out: list[Transfer]) -> None:
    """Return margin amounts to the two owners' free balances."""
    v = state.positions.v
    position_id = v.position_id[row]
    keys = state.agent_keys
    transfer(out, MARGIN_LONG, position_id, FREE, keys[v.long_agent[row]], long_e6, "return")
    transfer(out, MARGIN_SHORT, position_id, FREE, keys[v.short_agent[row]], short_e6, "return")
