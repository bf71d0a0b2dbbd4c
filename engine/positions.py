"""Closing positions: by either party, for any fraction, and at a fixed duration's end
(DESIGN §4 Closing and expiry)."""

from __future__ import annotations

import numpy as np

from engine import commands as cmd
from engine.events import PositionClosed, Transfer
from engine import oracle
from engine import rejections as rj
from engine.context import Ctx
from engine.risk import settlement
from engine.state import OPEN, State
from engine.units import BPS_SCALE, div_half_even


def party_side(state: State, row: int, agent: str) -> str | None:
    """``"long"``/``"short"`` if ``agent`` holds that side of the position, else None."""
    index = state.agent_row.get(agent)
    if index is None:
        return None
    v = state.positions.v
    if v.long_agent[row] == index:
        return "long"
    if v.short_agent[row] == index:
        return "short"
    return None


def decide_close(state: State, c: cmd.ClosePosition, ctx: Ctx):
    row = state.position_row.get(c.position_id)
    if row is None:
        return rj.rejected(rj.UNKNOWN_POSITION, f"no open position {c.position_id}", position_id=c.position_id)
    if party_side(state, row, c.agent) is None:
        return rj.rejected(rj.NOT_OWNER, "only a party to the position may close it", position_id=c.position_id)
    if not 1 <= c.fraction_bps <= BPS_SCALE:
        return rj.out_of_range("fraction_bps", c.fraction_bps, 1, BPS_SCALE)
    v = state.positions.v
    market = v.market[row]
    refused = oracle.require(state, market, ctx.ts_ns, oracle.CLOSE)
    if refused is not None:
        return refused
    size_e6 = v.size_e6[row]
    if c.fraction_bps < BPS_SCALE:
        remaining_e6 = size_e6 - div_half_even(size_e6 * c.fraction_bps, BPS_SCALE)
        size_e6_min = state.config.markets[market].size_e6_min
        if remaining_e6 < size_e6_min:
            return rj.rejected(rj.REMAINDER_TOO_SMALL, "the part left open would be below the market's min size",
                               remaining_size_e6=remaining_e6, size_e6_min=size_e6_min,
                               hint="close 10000 bps to close it all")
    return [close_event(state, row, c.fraction_bps, "close", c.agent, c.client_id, ctx)]


def close_event(state: State, row: int, fraction_bps: int, reason: str, agent: str, client_id: str,
                ctx: Ctx, accrue_until_ns: int | None = None) -> PositionClosed:
    """Close ``fraction_bps`` of the position at the last price: funding accrued until
    ``accrue_until_ns`` (default: now), PnL, and the same fraction of each side's margin
    back to its owner."""
    v = state.positions.v
    market = v.market[row]
    o = state.oracle
    price_e8 = o.price_e8[market]
    transfers: list[Transfer] = []
    until_ns = ctx.ts_ns if accrue_until_ns is None else accrue_until_ns
    done = settlement.close_out(state, row, price_e8, fraction_bps, until_ns, transfers)
    if fraction_bps == BPS_SCALE:
        back_long_e6, back_short_e6 = done.margin_long_e6, done.margin_short_e6
    else:
        back_long_e6 = div_half_even(done.margin_long_e6 * fraction_bps, BPS_SCALE)
        back_short_e6 = div_half_even(done.margin_short_e6 * fraction_bps, BPS_SCALE)
    settlement.return_margins(state, row, back_long_e6, back_short_e6, transfers)
    return PositionClosed(
        ctx.seq(), ctx.ts_ns, ctx.cmd_id, position_id=v.position_id[row], agent=agent, reason=reason,
        fraction_bps=fraction_bps, price_e8=price_e8, conf_e8=o.conf_e8[market], publish_ns=o.publish_ns[market],
        closed_size_e6=done.closed_size_e6, remaining_size_e6=v.size_e6[row] - done.closed_size_e6,
        funding_long_to_short_e6=done.funding_long_to_short_e6, pnl_long_e6=done.pnl_long_e6,
        insurance_e6=done.insurance_e6, bad_debt_e6=done.bad_debt_e6, client_id=client_id, transfers=transfers)


def due_expiry(state: State, until_ns: int, ctx: Ctx) -> list:
    """Tick phase: close the first fixed-duration position whose end is at or before
    ``until_ns`` (one per round: a close may draw on the insurance fund)."""
    if state.fixed_duration_open == 0:
        return []
    t = state.positions
    n = t.high_water
    expires = t.expires_ns[:n]
    due = np.flatnonzero((t.status[:n] == OPEN) & (expires > 0) & (expires <= until_ns))
    if len(due) == 0:
        return []
    row = int(due[np.lexsort((t.position_id[due], expires[due]))[0]])
    # A fixed duration ends at open + duration: funding accrues until then, not to the tick.
    return [close_event(state, row, BPS_SCALE, "expiry", "", "", ctx, accrue_until_ns=int(expires[row]))]
