"""Commands: what agents, oracles and the sequencer ask of the engine (imperative names).

Frozen msgspec Structs, tagged with stable versioned names, in one union ``Command``.
Schema evolution appends defaulted fields; a breaking change is a new tag plus an upcaster.
``array_like`` keeps the journal compact; wire formats for humans live in adapters/.

The sequencer stamps ``ts_ns`` and ``cmd_id`` outside the command (``engine.execute``).
Agents are identified by their Solana public key in base58.
"""

from __future__ import annotations

from typing import Literal, Union

import msgspec

Side = Literal["long", "short"]
Duration = Literal["perpetual", "1h", "24h"]
DURATION_NS = {"perpetual": 0, "1h": 3_600 * 10**9, "24h": 86_400 * 10**9}  # 0: no fixed end


class _Command(msgspec.Struct, frozen=True, array_like=True, tag=True, gc=False):
    pass


class Deposit(_Command, tag="deposit.v1"):
    agent: str
    amount_e6: int
    ref: str  # external reference (e.g. a Solana signature); a repeated ref is a no-op


class Withdraw(_Command, tag="withdraw.v1"):
    agent: str
    amount_e6: int
    destination: str
    client_id: str = ""


class RequestQuote(_Command, tag="request_quote.v1"):
    trader: str
    market: int
    side: Side
    size_e6: int
    leverage: int
    max_funding_rate_e9: int
    duration: Duration = "perpetual"
    expires_in_ms: int = 0  # 0: the market's default RFQ lifetime
    client_id: str = ""
    auto_accept: bool = False
    target_rate_e9: int | None = None  # with auto_accept: accept at once at or below this


class SubmitQuote(_Command, tag="submit_quote.v1"):
    maker: str
    rfq_id: int
    funding_rate_e9: int
    collateral_e6: int
    valid_for_ms: int = 0  # 0: the market's default quote lifetime
    client_id: str = ""


class CancelQuote(_Command, tag="cancel_quote.v1"):
    maker: str
    quote_id: int
    client_id: str = ""


class CancelRfq(_Command, tag="cancel_rfq.v1"):
    trader: str
    rfq_id: int
    client_id: str = ""


BEST_QUOTE = 0  # AcceptQuote.quote_id for "the best live quote"


class AcceptQuote(_Command, tag="accept_quote.v1"):
    trader: str
    rfq_id: int
    quote_id: int = BEST_QUOTE
    signature: str = ""  # base58 Ed25519 over b"accept:{rfq_id}:{quote_id}", checked at the edge
    client_id: str = ""


class ClosePosition(_Command, tag="close_position.v1"):
    agent: str
    position_id: int
    fraction_bps: int = 10_000
    client_id: str = ""


class Liquidate(_Command, tag="liquidate.v1"):
    keeper: str
    position_id: int
    client_id: str = ""


class AddMargin(_Command, tag="add_margin.v1"):
    agent: str
    position_id: int
    amount_e6: int
    client_id: str = ""


class RemoveMargin(_Command, tag="remove_margin.v1"):
    agent: str
    position_id: int
    amount_e6: int
    client_id: str = ""


class OracleUpdate(_Command, tag="oracle_update.v1"):
    market: int
    price_e8: int
    conf_e8: int
    publish_ns: int
    source: str = ""  # where the price came from: "pyth:<feed id>", "synthetic", "recorded:...", "dev"
    # Provenance (appended; docs/oracle.md): the publisher's feed id, the sources the price was
    # made of (one for Pyth; the exchanges kept by a median) and their spread, max - min in bps
    # of the price; the publisher's EMA price (Pyth's ema_price), 0 when it has none.
    feed_id: str = ""
    sources: list[str] = []
    spread_bps: int = 0
    ema_price_e8: int = 0


class SwitchOracleSource(_Command, tag="switch_oracle_source.v1"):
    """Record that the venue's oracle feed now prices ``market`` from ``to_source`` (venue only).

    Sent by the feed on every failover and failback, before the first price from the new
    source; ``reason`` is one of ``engine.oracle.SWITCH_REASONS``. It changes no state: the
    journal says when and why the source changed (docs/oracle.md, "Failover")."""

    market: int
    from_source: str
    to_source: str
    reason: str


class Tick(_Command, tag="tick.v1"):
    """Injected by the sequencer; all time-driven work happens only here."""


class CancelAgentQuotes(_Command, tag="cancel_agent_quotes.v1"):
    """Release every live quote of one maker (its session ended)."""

    maker: str


Command = Union[
    Deposit,
    Withdraw,
    RequestQuote,
    SubmitQuote,
    CancelQuote,
    CancelRfq,
    AcceptQuote,
    ClosePosition,
    Liquidate,
    AddMargin,
    RemoveMargin,
    OracleUpdate,
    Tick,
    CancelAgentQuotes,
    SwitchOracleSource,
]

COMMAND_TYPES: tuple[type, ...] = Command.__args__  # type: ignore[attr-defined]
