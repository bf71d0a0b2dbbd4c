"""Deposits and withdrawals (DESIGN §4): deposits come from ``external`` and are idempotent
by their external reference; withdrawals only from ``free``.

A deposit ref is remembered for ever (a watcher may redeliver any time, even after a
restart), so a repeat is DUPLICATE however late it comes; their number is bounded by
``EngineConfig.deposit_refs_max``, beyond which deposits are refused (LIMIT_REACHED) —
never credited twice.
"""

from __future__ import annotations

from engine import commands as cmd
from engine.events import Deposited, EXTERNAL, FREE, Transfer, Withdrawn
from engine import rejections as rj
from engine.context import Ctx, transfer
from engine.state import State
from engine.units import AMOUNT_E6_MAX, EXTERNAL_E6_MAX, REF_LEN_MAX


def decide_deposit(state: State, c: cmd.Deposit, ctx: Ctx):
    if not 1 <= c.amount_e6 <= AMOUNT_E6_MAX:
        return rj.out_of_range("amount_e6", c.amount_e6, 1, AMOUNT_E6_MAX)
    if not 1 <= len(c.ref) <= REF_LEN_MAX:
        return rj.rejected(rj.INVALID_FIELD, "ref must be 1..128 characters", field="ref", length_max=REF_LEN_MAX)
    first_seq = state.deposit_refs.get(c.ref)
    if first_seq is not None:
        return rj.rejected(rj.DUPLICATE, "this deposit ref was already credited", ref=c.ref, first_seq=first_seq)
    limits = state.config
    if len(state.deposit_refs) >= limits.deposit_refs_max:
        return rj.limit_reached("deposit_refs_max", limits.deposit_refs_max,
                                "the venue remembers every deposit ref and holds as many as it may",
                                deposit_refs=len(state.deposit_refs))
    if c.agent not in state.agent_row and len(state.agent_row) >= limits.agents_max:
        return rj.limit_reached("agents_max", limits.agents_max, "the venue has as many agent accounts as it may",
                                agents=len(state.agent_row))
    room_e6 = EXTERNAL_E6_MAX + state.external_e6
    if c.amount_e6 > room_e6:
        return rj.rejected(rj.LIMIT_REACHED, "the venue's total deposit cap would be exceeded",
                           amount_e6_max=room_e6)
    transfers: list[Transfer] = []
    transfer(transfers, EXTERNAL, "", FREE, c.agent, c.amount_e6, "deposit")
    return [Deposited(ctx.seq(), ctx.ts_ns, ctx.cmd_id, agent=c.agent, amount_e6=c.amount_e6, ref=c.ref,
                      transfers=transfers)]


def decide_withdraw(state: State, c: cmd.Withdraw, ctx: Ctx):
    if not 1 <= c.amount_e6 <= AMOUNT_E6_MAX:
        return rj.out_of_range("amount_e6", c.amount_e6, 1, AMOUNT_E6_MAX)
    if not 1 <= len(c.destination) <= REF_LEN_MAX:
        return rj.rejected(rj.INVALID_FIELD, "destination must be 1..128 characters", field="destination")
    free_e6 = state.free_of(c.agent)
    if free_e6 < c.amount_e6:
        return rj.rejected(rj.INSUFFICIENT_FUNDS, "free balance below the withdrawal",
                           required_e6=c.amount_e6, available_e6=free_e6)
    transfers: list[Transfer] = []
    transfer(transfers, FREE, c.agent, EXTERNAL, "", c.amount_e6, "withdraw")
    return [Withdrawn(ctx.seq(), ctx.ts_ns, ctx.cmd_id, agent=c.agent, amount_e6=c.amount_e6,
                      destination=c.destination, client_id=c.client_id, transfers=transfers)]
