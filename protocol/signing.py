"""Agent keys and what each signature covers (DESIGN §8): the venue verifies, the SDK signs.

Agents are Solana keypairs; signatures are base58 Ed25519 (solders).
"""

from __future__ import annotations

from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature


def parse_agent(agent: str) -> Pubkey | None:
    """``agent`` (base58) as a public key; None if it is not one."""
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


def sign(keypair: Keypair, message: bytes) -> str:
    """Base58 Ed25519 signature of ``message``."""
    return str(keypair.sign_message(message))


def login_message(nonce: bytes, agent: str) -> bytes:
    """What Login signs: the server's nonce, then the agent's key (base58, UTF-8)."""
    return b"agentperp-login:" + nonce + b":" + agent.encode()


def accept_message(rfq_id: int | str, quote_id: int | str) -> bytes:
    """What an accept signs (DESIGN §8): ``accept:{request_id}:{quote_id}``."""
    return f"accept:{rfq_id}:{quote_id}".encode()


def http_message(timestamp_ms: str, method: str, path: str, body: bytes) -> bytes:
    """What a signed HTTP request signs (DESIGN §8): ``"{timestamp}\\n{METHOD}\\n{path}\\n" + body``,
    ``path`` with its query string as sent."""
    return f"{timestamp_ms}\n{method}\n{path}\n".encode() + body


def http_headers(keypair: Keypair, timestamp_ms: int, method: str, path: str, body: bytes) -> dict[str, str]:
    """The three signing headers of an HTTP request (``X-Agent``, ``X-Timestamp``, ``X-Signature``)."""
    timestamp = str(timestamp_ms)
    return {"X-Agent": str(keypair.pubkey()), "X-Timestamp": timestamp,
            "X-Signature": sign(keypair, http_message(timestamp, method, path, body))}
