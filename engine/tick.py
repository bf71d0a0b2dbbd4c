"""``Tick``: the only place where time-driven work happens (DESIGN §4 Time).

A Tick is decided in rounds: each round returns the events of the earliest phase that has
work, and ``engine.execute`` applies them and decides the Tick again until a round returns
nothing. So every step is decided against the state the previous one left, exactly as if
each were its own command. Phases, in order:

1. quotes past their lifetime are released;
2. RFQs past their lifetime are auto-accepted (if asked) or closed;
3. the next 8h funding boundary at or before now: first the fixed-duration positions that
   end at or before it close, then funding settles at the boundary;
4. fixed-duration positions that end at or before now close;
5. positions liquidatable for ``auto_liquidate_after_ms`` are liquidated by the engine.
"""

from __future__ import annotations

from engine import positions
from engine.context import Ctx
from engine.rfq import lifecycle
from engine.risk import funding, liquidation
from engine.state import State


def decide_round(state: State, ctx: Ctx) -> list:
    """The events of the next round of a Tick at ``ctx.ts_ns``; empty when it is done."""
    events = lifecycle.due_quote_expiries(state, ctx)
    if events:
        return events
    events = lifecycle.due_rfq_expiries(state, ctx)
    if events:
        return events
    boundary_ns = funding.next_boundary(state, ctx.ts_ns)
    if boundary_ns is not None:
        return positions.due_expiry(state, boundary_ns, ctx) or funding.decide_boundary(state, boundary_ns, ctx)
    events = positions.due_expiry(state, ctx.ts_ns, ctx)
    if events:
        return events
    return liquidation.due_auto_liquidations(state, ctx)
