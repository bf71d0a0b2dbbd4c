"""Events: what happened (past-tense names). Applying them in order is the state.

Every event carries ``seq`` (global, gap-free, from 1), ``ts_ns`` (stamped by the
sequencer) and ``cmd_id`` (the journaled command that caused it). Every movement of money
is a ``Transfer`` inside the event that caused it; ``engine.apply`` moves money only by
applying those transfers, so the double-entry books cannot drift from the events.

Events that answer an agent's command carry its ``client_id`` so that the idempotency
window is part of the state (rebuilt by replay like everything else).
"""

from __future__ import annotations

from typing import Literal, Union

import msgspec

from engine.commands import Duration, Side

# Accounts of the double-entry books. A reference says whose: an agent key for FREE/HELD,
# a position id for the two margins, nothing ("") for the system accounts.
FREE = 0
HELD = 1
MARGIN_LONG = 2
MARGIN_SHORT = 3
FEES = 4
INSURANCE = 5
EXTERNAL = 6  # where deposits come from; the only account allowed below zero
ACCOUNT_NAMES = ("free", "held", "margin_long", "margin_short", "fees", "insurance", "external")

# What a transfer is for. A Literal, not a str, so that decoding hands back these very
# strings instead of allocating one per transfer (~45 ns of the ~300 a transfer's decode
# took: replay decodes ~1.7 transfers per event); a kind outside it does not decode.
TRANSFER_KINDS = ("deposit", "withdraw", "hold", "release", "margin", "fee", "funding", "pnl", "insurance",
                  "reward", "return")


class Transfer(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """``amount_e6`` (> 0) moves from the debit account to the credit account."""

    debit: int
    debit_ref: str | int
    credit: int
    credit_ref: str | int
    amount_e6: int
    kind: Literal[TRANSFER_KINDS]


class _Event(msgspec.Struct, frozen=True, array_like=True, tag=True, gc=False):
    seq: int
    ts_ns: int
    cmd_id: int


class Deposited(_Event, tag="deposited.v1"):
    agent: str
    amount_e6: int
    ref: str
    transfers: list[Transfer]


class Withdrawn(_Event, tag="withdrawn.v1"):
    agent: str
    amount_e6: int
    destination: str
    client_id: str
    transfers: list[Transfer]


class RfqOpened(_Event, tag="rfq_opened.v1"):
    rfq_id: int
    trader: str
    market: int
    side: Side
    size_e6: int
    leverage: int
    max_funding_rate_e9: int
    duration: Duration
    expires_ns: int
    margin_e6: int  # what the trader's side will post at open
    fee_e6: int  # taker fee, charged at open
    auto_accept: bool
    target_rate_e9: int | None
    client_id: str
    transfers: list[Transfer]


class QuoteSubmitted(_Event, tag="quote_submitted.v1"):
    quote_id: int
    rfq_id: int
    maker: str
    funding_rate_e9: int
    collateral_e6: int
    fee_e6: int  # maker fee, held with the collateral and charged at open
    expires_ns: int
    client_id: str
    transfers: list[Transfer]


class QuoteReleased(_Event, tag="quote_released.v1"):
    """A live quote ends without being filled; its hold returns to the maker's free."""

    quote_id: int
    rfq_id: int
    maker: str
    reason: str  # cancelled, replaced, expired, rfq_closed, not_selected, session_ended
    client_id: str
    transfers: list[Transfer]


class RfqClosed(_Event, tag="rfq_closed.v1"):
    """An RFQ ends without a fill; the trader's hold returns to free."""

    rfq_id: int
    trader: str
    reason: str  # cancelled, expired
    client_id: str
    transfers: list[Transfer]


class PositionOpened(_Event, tag="position_opened.v1"):
    position_id: int
    rfq_id: int
    quote_id: int
    market: int
    long_agent: str
    short_agent: str
    taker_side: Side
    size_e6: int
    entry_price_e8: int
    oracle_conf_e8: int
    oracle_publish_ns: int
    funding_rate_e9: int  # per 8h; the taker pays the maker (negative: the maker pays)
    margin_long_e6: int
    margin_short_e6: int
    taker_fee_e6: int
    maker_fee_e6: int
    duration: Duration
    expires_ns: int  # 0 for perpetual
    signature: str
    auto_accepted: bool
    released_quote_ids: list[int]  # the RFQ's other live quotes, released by this fill
    client_id: str
    transfers: list[Transfer]


class FundingSettled(_Event, tag="funding_settled.v1"):
    """Funding at one 8h boundary for every open position, as columns.

    Each entry is a transfer of kind ``funding`` between the two margins of one position:
    ``long_to_short_e6[i] > 0`` moves from the long margin to the short margin of
    ``position_ids[i]``, a negative value the other way. ``shortfall_e6`` is what payers
    owed beyond their margin (unpaid; those payers are now liquidatable).
    """

    boundary_ns: int
    position_ids: list[int]
    long_to_short_e6: list[int]
    shortfall_e6: int


class PositionClosed(_Event, tag="position_closed.v1"):
    position_id: int
    agent: str  # who closed it ("" when a fixed duration ended)
    reason: str  # close, expiry
    fraction_bps: int
    price_e8: int
    conf_e8: int
    publish_ns: int
    closed_size_e6: int
    remaining_size_e6: int
    funding_long_to_short_e6: int
    pnl_long_e6: int  # PnL of the closed part for the long side at price_e8
    insurance_e6: int  # paid by the insurance fund for the loser's shortfall
    bad_debt_e6: int  # shortfall the insurance fund could not cover
    client_id: str
    transfers: list[Transfer]


class PositionLiquidated(_Event, tag="position_liquidated.v1"):
    position_id: int
    side: Side  # the liquidated side
    keeper: str  # "" when the engine liquidated (the reward goes to insurance)
    price_e8: int
    publish_ns: int
    oracle_stale: bool  # the last price was older than the market's max age
    funding_long_to_short_e6: int
    pnl_long_e6: int
    insurance_e6: int
    bad_debt_e6: int
    reward_e6: int
    client_id: str
    transfers: list[Transfer]
    # The grade of the price it was liquidated at (engine/oracle.py): "valid", "too_uncertain"
    # or "stale_for_margin" (liquidation refuses the others); "" in journals before it.
    oracle_validity: str = ""


class MarginChanged(_Event, tag="margin_changed.v1"):
    position_id: int
    agent: str
    side: Side
    delta_e6: int  # > 0 added from free, < 0 removed to free
    client_id: str
    transfers: list[Transfer]


class OracleUpdated(_Event, tag="oracle_updated.v1"):
    market: int
    price_e8: int
    conf_e8: int
    publish_ns: int
    source: str
    # Provenance, as in the command (appended with defaults: older journals decode).
    feed_id: str = ""
    sources: list[str] = []
    spread_bps: int = 0
    ema_price_e8: int = 0


class OracleSourceSwitched(_Event, tag="oracle_source_switched.v1"):
    """The oracle feed now prices ``market`` from ``to_source``: an audit event, no state
    changes (the next ``OracleUpdated`` carries the new source)."""

    market: int
    from_source: str
    to_source: str
    reason: str  # stale, diverged, recovered, check_stale (engine.oracle.SWITCH_REASONS)


class LiquidationWatch(_Event, tag="liquidation_watch.v1"):
    """Positions of a market first found liquidatable now, and those no longer so."""

    market: int
    flagged: list[int]
    cleared: list[int]


class Checkpoint(_Event, tag="checkpoint.v1"):
    """Hash of the full state after every event before this one (``engine.state.state_hash``)."""

    state_hash: str


Event = Union[
    Deposited,
    Withdrawn,
    RfqOpened,
    QuoteSubmitted,
    QuoteReleased,
    RfqClosed,
    PositionOpened,
    FundingSettled,
    PositionClosed,
    PositionLiquidated,
    MarginChanged,
    OracleUpdated,
    LiquidationWatch,
    Checkpoint,
    OracleSourceSwitched,
]

EVENT_TYPES: tuple[type, ...] = Event.__args__  # type: ignore[attr-defined]
