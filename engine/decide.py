"""``decide(state, command, ts_ns, cmd_id) -> events | Rejected``: pure, no I/O.

Dispatches each command to the one module that holds its rule, after the checks every
command shares: field sizes and the client_id idempotency window.
"""

from __future__ import annotations

from engine import accounts, oracle, positions, tick
from engine import commands as cmd
from engine import rejections as rj
from engine.context import Ctx
from engine.rfq import lifecycle
from engine.risk import liquidation, margin
from engine.state import State
from engine.units import AGENT_LEN_MAX, CLIENT_ID_LEN_MAX, NS_PER_MS, SIGNATURE_LEN_MAX

# Which field names the agent acting in each command.
ACTOR_FIELD = {
    cmd.Deposit: "agent", cmd.Withdraw: "agent", cmd.RequestQuote: "trader", cmd.SubmitQuote: "maker",
    cmd.CancelQuote: "maker", cmd.CancelRfq: "trader", cmd.AcceptQuote: "trader", cmd.ClosePosition: "agent",
    cmd.Liquidate: "keeper", cmd.AddMargin: "agent", cmd.RemoveMargin: "agent", cmd.CancelAgentQuotes: "maker",
}


def _tick(state: State, c: cmd.Tick, ctx: Ctx) -> list:
    return tick.decide_round(state, ctx)


_DECIDE = {
    cmd.Deposit: accounts.decide_deposit,
    cmd.Withdraw: accounts.decide_withdraw,
    cmd.RequestQuote: lifecycle.decide_request,
    cmd.SubmitQuote: lifecycle.decide_submit,
    cmd.CancelQuote: lifecycle.decide_cancel_quote,
    cmd.CancelRfq: lifecycle.decide_cancel_rfq,
    cmd.AcceptQuote: lifecycle.decide_accept,
    cmd.CancelAgentQuotes: lifecycle.decide_cancel_agent_quotes,
    cmd.ClosePosition: positions.decide_close,
    cmd.Liquidate: liquidation.decide_liquidate,
    cmd.AddMargin: margin.decide_add,
    cmd.RemoveMargin: margin.decide_remove,
    cmd.OracleUpdate: oracle.decide_update,
    cmd.Tick: _tick,
}


def decide(state: State, command, ts_ns: int, cmd_id: int):
    """The events ``command`` causes at ``ts_ns``, or why it is rejected. Reads, never writes."""
    ctx = Ctx(state.last_seq, ts_ns, cmd_id)
    actor_field = ACTOR_FIELD.get(type(command))
    if actor_field is not None:
        refused = _shared_checks(state, command, getattr(command, actor_field), ts_ns)
        if refused is not None:
            return refused
    return _DECIDE[type(command)](state, command, ctx)


def _shared_checks(state: State, command, actor: str, ts_ns: int) -> rj.Rejected | None:
    if not 1 <= len(actor) <= AGENT_LEN_MAX:
        return rj.rejected(rj.INVALID_FIELD, f"agent key must be 1..{AGENT_LEN_MAX} characters", field="agent")
    client_id = getattr(command, "client_id", "")
    if client_id:
        if len(client_id) > CLIENT_ID_LEN_MAX:
            return rj.rejected(rj.INVALID_FIELD, f"client_id longer than {CLIENT_ID_LEN_MAX}", field="client_id")
        seen = state.client_ids.get((actor, client_id))
        if seen is not None and ts_ns - seen[1] <= state.config.idempotency_window_ms * NS_PER_MS:
            return rj.rejected(rj.DUPLICATE, "this client_id was already executed; nothing was done again",
                               client_id=client_id, first_seq=seen[0])
    if len(getattr(command, "signature", "")) > SIGNATURE_LEN_MAX:
        return rj.rejected(rj.INVALID_FIELD, f"signature longer than {SIGNATURE_LEN_MAX}", field="signature")
    return None
