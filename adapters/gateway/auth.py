"""Who may send what, and signatures — shared by the TCP gateway and the HTTP API.

Agents are Solana keypairs; signatures are base58 Ed25519 (solders). An agent may send the
commands in ``AGENT_COMMANDS`` only, and only as itself: the command's actor field must be
the authenticated agent. ``Deposit`` (the deposit watcher, the dev faucet), ``OracleUpdate``
(oracle adapters), ``Tick`` (the sequencer) and ``CancelAgentQuotes`` (the gateway at the
end of a session) never come from agents.
"""

from __future__ import annotations

from solders.pubkey import Pubkey
from solders.signature import Signature

from engine import commands as cmd
from engine.rejections import Rejected

# Stable codes of the edge (the engine's are in engine.rejections).
BAD_SIGNATURE = "BAD_SIGNATURE"  # a signature that does not verify, or is not base58 Ed25519
BAD_AGENT = "BAD_AGENT"  # not a base58 Solana public key
NOT_AUTHENTICATED = "NOT_AUTHENTICATED"  # a command before login, or from an observer
FORBIDDEN = "FORBIDDEN"  # a command agents may not send, or on behalf of another agent
STALE_REQUEST = "STALE_REQUEST"  # X-Timestamp too far from the venue's clock
MALFORMED = "MALFORMED"  # undecodable frame or body, wrong types, missing fields
RATE_LIMITED = "RATE_LIMITED"  # the agent's request budget is spent; detail: retry_after_ms
TOO_MANY_CONNECTIONS = "TOO_MANY_CONNECTIONS"
FRAME_TOO_LARGE = "FRAME_TOO_LARGE"
SLOW_CONSUMER = "SLOW_CONSUMER"  # the outbound queue overflowed; the connection is closed
LOGIN_TIMEOUT = "LOGIN_TIMEOUT"
UNSUPPORTED_VERSION = "UNSUPPORTED_VERSION"
# The sequencer's refusals (never journaled): answered on every edge with these codes.
OVERLOADED = "OVERLOADED"  # the sequencer's queue is full; retry later (detail: queue_max)
STOPPED = "STOPPED"  # the venue is stopping or failed; the command was not executed

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


def parse_agent(agent: str) -> Pubkey | None:
    try:
        return Pubkey.from_string(agent)
    except (ValueError, TypeError):
        return None


def verify(agent: str, message: bytes, signature: str) -> bool:
    """Whether ``signature`` (base58) is ``agent``'s Ed25519 signature over ``message``."""
    pubkey = parse_agent(agent)
    if pubkey is None:
        return False
    try:
        return Signature.from_string(signature).verify(pubkey, message)
    except (ValueError, TypeError):
        return False


def login_message(nonce: bytes, agent: str) -> bytes:
    """What Login signs: the server's nonce, then the agent's key (base58, UTF-8)."""
    return b"agentperp-login:" + nonce + b":" + agent.encode()


def accept_message(rfq_id: int | str, quote_id: int | str) -> bytes:
    """What an accept signs (DESIGN §8): ``accept:{request_id}:{quote_id}``."""
    return f"accept:{rfq_id}:{quote_id}".encode()


def http_message(timestamp_ms: str, method: str, path: str, body: bytes) -> bytes:
    """What a signed HTTP request signs (DESIGN §8)."""
    return f"{timestamp_ms}\n{method}\n{path}\n".encode() + body


def authorize(command, agent: str | None) -> Rejected | None:
    """None if ``agent`` may send ``command``; else why not."""
    field = AGENT_COMMANDS.get(type(command))
    if field is None:
        return Rejected(FORBIDDEN, f"agents may not send {type(command).__name__}",
                        {"allowed": sorted(t.__struct_config__.tag for t in AGENT_COMMANDS)})
    if agent is None:
        return Rejected(NOT_AUTHENTICATED, "log in before sending commands", {})
    if getattr(command, field) != agent:
        return Rejected(FORBIDDEN, f"{field} must be the logged-in agent", {"field": field, "agent": agent})
    if type(command) is cmd.AcceptQuote:
        quote = "best" if command.quote_id == cmd.BEST_QUOTE else command.quote_id
        if not verify(agent, accept_message(command.rfq_id, quote), command.signature):
            return Rejected(BAD_SIGNATURE, "signature must be the trader's base58 Ed25519 signature over "
                            "accept:{request_id}:{quote_id}",
                            {"message": accept_message(command.rfq_id, quote).decode()})
    return None
