"""Who may send what — the edge's authorization rule, used by ``edge.Edge`` for every gateway.

An agent may send the commands in ``AGENT_COMMANDS`` only, and only as itself: the command's
actor field must be the authenticated agent. ``Deposit`` (the deposit watcher, the dev
faucet), ``OracleUpdate`` and ``SwitchOracleSource`` (the oracle feed), ``Tick`` (the sequencer) and
``CancelAgentQuotes`` (the gateway at the end of a session) never come from agents.
Signatures themselves (what each covers, how they verify) are ``protocol.signing``.
"""

from __future__ import annotations

from engine import commands as cmd
from engine.rejections import Rejected
from protocol import codes
from protocol.signing import accept_message, verify

# The actor field of each command agents may send.
AGENT_COMMANDS: dict[type, str] = {
    cmd.Withdraw: "agent",
    cmd.RequestQuote: "trader",
    cmd.SubmitQuote: "maker",
    cmd.CancelQuote: "maker",
    cmd.CancelRfq: "trader",
    cmd.AcceptQuote: "trader",
    cmd.ClosePosition: "agent",
    cmd.Liquidate: "keeper",
    cmd.AddMargin: "agent",
    cmd.RemoveMargin: "agent",
}


def authorize(command, agent: str | None) -> Rejected | None:
    """None if ``agent`` may send ``command``; else why not."""
    field = AGENT_COMMANDS.get(type(command))
    if field is None:
        return Rejected(codes.FORBIDDEN, f"agents may not send {type(command).__name__}",
                        {"allowed": sorted(t.__struct_config__.tag for t in AGENT_COMMANDS)})
    if agent is None:
        return Rejected(codes.NOT_AUTHENTICATED, "log in before sending commands", {})
    if getattr(command, field) != agent:
        return Rejected(codes.FORBIDDEN, f"{field} must be the logged-in agent", {"field": field, "agent": agent})
    if type(command) is cmd.AcceptQuote:
        quote = "best" if command.quote_id == cmd.BEST_QUOTE else command.quote_id
        if not verify(agent, accept_message(command.rfq_id, quote), command.signature):
            return Rejected(codes.BAD_SIGNATURE, "signature must be the trader's base58 Ed25519 signature over "
                            "accept:{request_id}:{quote_id}",
                            {"message": accept_message(command.rfq_id, quote).decode()})
    return None
