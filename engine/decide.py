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


def _tick(state: State, c: cmd.Tick, ctx: Ctx) -> list:
    return tick.decide_round(state, ctx)


# Each command's rule, and which field names the agent acting in it (None: no agent).
_RULES = {
    cmd.Deposit: (accounts.decide_deposit, "agent"),
    cmd.Withdraw: (accounts.decide_withdraw, "agent"),
    cmd.RequestQuote: (lifecycle.decide_request, "trader"),
    cmd.SubmitQuote: (lifecycle.decide_submit, "maker"),
    cmd.CancelQuote: (lifecycle.decide_cancel_quote, "maker"),
    cmd.CancelRfq: (lifecycle.decide_cancel_rfq, "trader"),
    cmd.AcceptQuote: (lifecycle.decide_accept, "trader"),
    cmd.CancelAgentQuotes: (lifecycle.decide_cancel_agent_quotes, "maker"),
    cmd.ClosePosition: (positions.decide_close, "agent"),
    cmd.Liquidate: (liquidation.decide_liquidate, "keeper"),
    cmd.AddMargin: (margin.decide_add, "agent"),
    cmd.RemoveMargin: (margin.decide_remove, "agent"),
    cmd.OracleUpdate: (oracle.decide_update, None),
    cmd.SwitchOracleSource: (oracle.decide_switch, None),
    cmd.Tick: (_tick, None),
}
# Per command type: (rule, actor field, has a client_id, has a signature). Which fields a
# type has is known once, here, rather than asked of every command (a missing attribute
# is an exception inside getattr).
_DECIDE = {kind: (rule, actor, "client_id" in kind.__struct_fields__, "signature" in kind.__struct_fields__)
           for kind, (rule, actor) in _RULES.items()}


def decide(state: State, command, ts_ns: int, cmd_id: int):
    """The events ``command`` causes at ``ts_ns``, or why it is rejected. Reads, never writes."""
    rule, actor_field, has_client_id, has_signature = _DECIDE[type(command)]
    if actor_field is not None:
        actor = getattr(command, actor_field)
        if not 1 <= len(actor) <= AGENT_LEN_MAX:
            return rj.rejected(rj.INVALID_FIELD, f"agent key must be 1..{AGENT_LEN_MAX} characters", field="agent")
        client_id = command.client_id if has_client_id else ""
        signature = command.signature if has_signature else ""
        if client_id or signature:  # most commands carry neither, and need no call
            refused = _check_client_id_and_signature(state, actor, client_id, signature, ts_ns)
            if refused is not None:
                return refused
    return rule(state, command, Ctx(state.last_seq, ts_ns, cmd_id))


def _check_client_id_and_signature(state: State, actor: str, client_id: str, signature: str,
                                   ts_ns: int) -> rj.Rejected | None:
    if client_id:
        if len(client_id) > CLIENT_ID_LEN_MAX:
            return rj.rejected(rj.INVALID_FIELD, f"client_id longer than {CLIENT_ID_LEN_MAX}", field="client_id")
        window_ns = state.config.idempotency_window_ms * NS_PER_MS
        seen = state.client_ids.get((actor, client_id))
        if seen is not None and ts_ns - seen[1] <= window_ns:
            return rj.rejected(rj.DUPLICATE, "this client_id was already executed; nothing was done again",
                               client_id=client_id, first_seq=seen[0])
        limit = state.config.client_ids_max
        if len(state.client_ids) >= limit and state.client_id_order[0][0] >= ts_ns - window_ns:
            # Full, and the oldest record is still inside the window: recording one more
            # would forget an id that must still answer DUPLICATE.
            oldest_ns = state.client_id_order[0][0]
            return rj.limit_reached("client_ids_max", limit, "too many client_ids within the idempotency window; "
                                    "retry without a client_id or once the oldest leaves the window",
                                    retry_after_ns=oldest_ns + window_ns + 1)
    if len(signature) > SIGNATURE_LEN_MAX:
        return rj.rejected(rj.INVALID_FIELD, f"signature longer than {SIGNATURE_LEN_MAX}", field="signature")
    return None
