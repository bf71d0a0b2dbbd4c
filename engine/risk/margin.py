"""Adding and removing margin on one's own side (DESIGN §4): removal only while equity
stays at or above the initial requirement at the current price."""

from __future__ import annotations

import math

from engine import commands as cmd
from engine import events as ev
from engine import oracle
from engine import rejections as rj
from engine.context import Ctx, transfer
from engine.positions import party_side
from engine.risk import formula_calls
from engine.state import State
from engine.units import AMOUNT_E6_MAX, BPS_SCALE


def _checked(state: State, c, ctx: Ctx):
    """The position row and the agent's side, or a rejection."""
    row = state.position_row.get(c.position_id)
    if row is None:
        return rj.rejected(rj.UNKNOWN_POSITION, f"no open position {c.position_id}", position_id=c.position_id)
    side = party_side(state, row, c.agent)
    if side is None:
        return rj.rejected(rj.NOT_OWNER, "margin can only be changed on one's own side", position_id=c.position_id)
    if not 1 <= c.amount_e6 <= AMOUNT_E6_MAX:
        return rj.out_of_range("amount_e6", c.amount_e6, 1, AMOUNT_E6_MAX)
    return row, side


def _event(state: State, row: int, side: str, c, delta_e6: int, ctx: Ctx) -> list:
    position_id = state.positions.v.position_id[row]
    account = ev.MARGIN_LONG if side == "long" else ev.MARGIN_SHORT
    transfers: list[ev.Transfer] = []
    transfer(transfers, ev.FREE, c.agent, account, position_id, delta_e6, "margin")
    return [ev.MarginChanged(ctx.seq(), ctx.ts_ns, ctx.cmd_id, position_id=position_id, agent=c.agent, side=side,
                             delta_e6=delta_e6, client_id=c.client_id, transfers=transfers)]


def decide_add(state: State, c: cmd.AddMargin, ctx: Ctx):
    checked = _checked(state, c, ctx)
    if isinstance(checked, rj.Rejected):
        return checked
    row, side = checked
    free_e6 = state.free_of(c.agent)
    if free_e6 < c.amount_e6:
        return rj.rejected(rj.INSUFFICIENT_FUNDS, "free balance below the margin to add",
                           required_e6=c.amount_e6, available_e6=free_e6)
    return _event(state, row, side, c, c.amount_e6, ctx)


def decide_remove(state: State, c: cmd.RemoveMargin, ctx: Ctx):
    checked = _checked(state, c, ctx)
    if isinstance(checked, rj.Rejected):
        return checked
    row, side = checked
    t = state.positions
    market = t.v.market[row]
    refused = oracle.require(state, market, ctx.ts_ns, oracle.REMOVE_MARGIN)
    if refused is not None:
        return refused
    price_e8 = state.oracle.price_e8[market]
    pnl = formula_calls.pnl_long_e6(t.v.size_e6[row], t.v.entry_price_e8[row], price_e8)
    if side == "long":
        margin_e6, margin_open_e6, pnl_side = t.v.margin_long_e6[row], t.v.margin_open_long_e6[row], pnl
    else:
        margin_e6, margin_open_e6, pnl_side = t.v.margin_short_e6[row], t.v.margin_open_short_e6[row], -pnl
    initial_e6 = formula_calls.requirement_e6(margin_open_e6, t.v.size_open_e6[row], t.v.size_e6[row],
                                              t.v.entry_price_e8[row], price_e8, BPS_SCALE)
    removable_e6 = max(0, min(margin_e6, math.floor(margin_e6 + pnl_side - initial_e6)))
    if c.amount_e6 > removable_e6:
        return rj.rejected(rj.INSUFFICIENT_MARGIN, "removal would leave equity below the initial requirement",
                           requested_e6=c.amount_e6, removable_max_e6=removable_e6,
                           equity_e6=margin_e6 + pnl_side, initial_requirement_e6=math.ceil(initial_e6))
    return _event(state, row, side, c, -c.amount_e6, ctx)
