"""``decide(state, command, ts_ns, cmd_id) -> events | Rejected``: pure, no I/O.

Dispatches each command to the one module that holds its rule, after the checks every
command shares: field sizes and the client_id idempotency window.
"""

from __future__ import annotations

from engine import accounts, oracle, positions, tick
from engine import rejections as rj
from engine.commands import (AcceptQuote, AddMargin, CancelAgentQuotes, CancelQuote, CancelRfq, ClosePosition, Deposit,
                             Liquidate, OracleUpdate, RemoveMargin, RequestQuote, SubmitQuote, SwitchOracleSource, Tick,
                             Withdraw)
from engine.context import Ctx
from engine.rfq import lifecycle
from engine.risk import liquidation, margin
from engine.state import State
from engine.units import AGENT_LEN_MAX, CLIENT_ID_LEN_MAX, NS_PER_MS, SIGNATURE_LEN_MAX


def decide(state: State, command, ts_ns: int, cmd_id: int):
    """The events ``command`` causes at ``ts_ns``, or why it is rejected. Reads, never writes.

    Each command type goes to the one rule that decides it; a command an agent sends first
    passes ``_agent_refusal`` with its acting agent's field. A chain of type tests, the
    commonest first, each naming the command as its own type (``submit = command``): the
    compiled engine then reads its fields at their offsets and calls the rule directly,
    where a table of rules would cost a Python call and generic attribute reads.
    """
    ctx = Ctx(state.last_seq, ts_ns, cmd_id)
    kind = type(command)
    if kind is SubmitQuote:
        submit = command
        refused = _agent_refusal(state, submit.maker, submit.client_id, "", ts_ns)
        return lifecycle.decide_submit(state, submit, ctx) if refused is None else refused
    if kind is OracleUpdate:
        return oracle.decide_update(state, command, ctx)
    if kind is RequestQuote:
        request = command
        refused = _agent_refusal(state, request.trader, request.client_id, "", ts_ns)
        return lifecycle.decide_request(state, request, ctx) if refused is None else refused
    if kind is AcceptQuote:
        accept = command
        refused = _agent_refusal(state, accept.trader, accept.client_id, accept.signature, ts_ns)
        return lifecycle.decide_accept(state, accept, ctx) if refused is None else refused
    if kind is Tick:
        return tick.decide_round(state, ctx)
    if kind is ClosePosition:
        close = command
        refused = _agent_refusal(state, close.agent, close.client_id, "", ts_ns)
        return positions.decide_close(state, close, ctx) if refused is None else refused
    if kind is CancelQuote:
        cancel_quote = command
        refused = _agent_refusal(state, cancel_quote.maker, cancel_quote.client_id, "", ts_ns)
        return lifecycle.decide_cancel_quote(state, cancel_quote, ctx) if refused is None else refused
    if kind is CancelRfq:
        cancel_rfq = command
        refused = _agent_refusal(state, cancel_rfq.trader, cancel_rfq.client_id, "", ts_ns)
        return lifecycle.decide_cancel_rfq(state, cancel_rfq, ctx) if refused is None else refused
    if kind is Deposit:
        deposit = command
        refused = _agent_refusal(state, deposit.agent, "", "", ts_ns)
        return accounts.decide_deposit(state, deposit, ctx) if refused is None else refused
    if kind is Withdraw:
        withdraw = command
        refused = _agent_refusal(state, withdraw.agent, withdraw.client_id, "", ts_ns)
        return accounts.decide_withdraw(state, withdraw, ctx) if refused is None else refused
    if kind is AddMargin:
        add = command
        refused = _agent_refusal(state, add.agent, add.client_id, "", ts_ns)
        return margin.decide_add(state, add, ctx) if refused is None else refused
    if kind is RemoveMargin:
        remove = command
        refused = _agent_refusal(state, remove.agent, remove.client_id, "", ts_ns)
        return margin.decide_remove(state, remove, ctx) if refused is None else refused
    if kind is Liquidate:
        liquidate = command
        refused = _agent_refusal(state, liquidate.keeper, liquidate.client_id, "", ts_ns)
        return liquidation.decide_liquidate(state, liquidate, ctx) if refused is None else refused
    if kind is CancelAgentQuotes:
        cancel_all = command
        refused = _agent_refusal(state, cancel_all.maker, "", "", ts_ns)
        return lifecycle.decide_cancel_agent_quotes(state, cancel_all, ctx) if refused is None else refused
    if kind is SwitchOracleSource:
        return oracle.decide_switch(state, command, ctx)
    raise TypeError(f"no rule decides a {kind.__name__}")


def _agent_refusal(state: State, actor: str, client_id: str, signature: str, ts_ns: int) -> rj.Rejected | None:
    """The checks every command of an agent shares: the acting agent's key, and its
    client_id (the idempotency window) and signature when it carries them."""
    if not 1 <= len(actor) <= AGENT_LEN_MAX:
        return rj.rejected(rj.INVALID_FIELD, f"agent key must be 1..{AGENT_LEN_MAX} characters", field="agent")
    if client_id or signature:  # most commands carry neither, and need no call
        return _check_client_id_and_signature(state, actor, client_id, signature, ts_ns)
    return None


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
