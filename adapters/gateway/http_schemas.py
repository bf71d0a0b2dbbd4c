"""The HTTP API's wire types: request bodies and responses in human units (DESIGN §8).

Request bodies are decoded straight into these structs (``msgspec.json`` with
``float_hook=Decimal``): JSON numbers in decimal fields keep every digit (never a float), and a
decimal string (``"100.5"``) is accepted too. Unknown fields are ignored (clients may send extra optional fields). The
OpenAPI document (``openapi.py``) is generated from these same structs.

Ids are strings of decimal digits (``"12"``); a JSON integer is accepted too. ``agent_id`` is
optional in signed bodies: the signer (``X-Agent``) acts, and an ``agent_id`` that names
anyone else is ``FORBIDDEN``.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta

# -- field schemas -----------------------------------------------------------------------------
# Every bound and pattern the edge enforces is stated here, and ``openapi.py`` narrows the
# market-dependent ones (market names, sizes, leverage, lifetimes) to the venue's markets.
# A decimal field is a JSON number with at most ``places`` decimal places (``multipleOf``) or
# a decimal string matching its pattern; its integer digits are limited so that nothing the
# schema admits is beyond the edge's hard bounds (``human``). Decimal fields are typed ``Any``
# for msgspec and decoded with ``float_hook=Decimal`` (exact digits, never a float), then
# converted by ``human.to_units``.

EVENTS_PAGE_DEFAULT = 500  # GET /events: events per page unless ?limit= says otherwise
EVENTS_PAGE_MAX = 5_000  # GET /events: ?limit= at most this

ID_PATTERN = "^[1-9][0-9]{0,17}$"
ID_MAX = 10**18 - 1
# A base58 Ed25519 public key: 43 characters (leading digit 5.. so it is 32 bytes) or 44
# (leading digit ..H so it stays below 2**256). Keys with leading zero bytes ("1...") are rare
# and accepted too, but not promised here.
AGENT_PATTERN = "^([5-9A-HJ-NP-Za-km-z][1-9A-HJ-NP-Za-km-z]{42}|[2-9A-H][1-9A-HJ-NP-Za-km-z]{43})$"
SIGNATURE_PATTERN = "^[1-9A-HJ-NP-Za-km-z]{1,128}$"


def _step(places: int) -> float | int:
    return 1 if places == 0 else float(f"1e-{places}")


def decimal_schema(places: int, low, high, pattern: str, description: str) -> dict:
    """A decimal field: a JSON number on the ``10**-places`` grid within [low, high], or a
    decimal string matching ``pattern``."""
    number: dict = {"type": "integer" if places == 0 else "number", "minimum": low, "maximum": high}
    if places:
        number["multipleOf"] = _step(places)
    return {"anyOf": [number, {"type": "string", "pattern": pattern}], "description": description}


def _decimal(places: int, low, high, pattern: str, description: str):
    return Annotated[Any, Meta(extra_json_schema=decimal_schema(places, low, high, pattern, description))]


def _fraction(digits: int) -> str:
    return f"(\\.[0-9]{{1,{digits}}})?"


USDC_PATTERN = "^[0-9]{1,9}" + _fraction(6) + "$"  # below 1e9 USDC, the edge's bound
SIGNED_USDC_PATTERN = "^-?[0-9]{1,9}" + _fraction(6) + "$"
SIZE_PATTERN = "^[0-9]{1,7}" + _fraction(6) + "$"  # below 1e7 USDC, the edge's size bound
RATE_PATTERN = "^-?(0(\\.0[0-9]{0,8})?|0\\.10{0,8})$"  # |rate| <= 0.1 per 8h, 9 places
PRICE_PATTERN = "^[0-9]{1,7}" + _fraction(8) + "$"  # below 1e7 USD
SECONDS_PATTERN = "^[0-9]{1,4}" + _fraction(3) + "$"  # below 1e4 s, the edge's lifetime bound (1 day)
PERCENT_PATTERN = "^([0-9]{1,2}" + _fraction(2) + "|100(\\.0{1,2})?)$"
WHOLE_PATTERN = "^([0-9]{1,2}|100)$"

Id = Annotated[Any, Meta(extra_json_schema={  # checked by http_parse.parse_id
    "anyOf": [{"type": "string", "pattern": ID_PATTERN}, {"type": "integer", "minimum": 1, "maximum": ID_MAX}],
    "description": "an id: a string of decimal digits without a leading zero (a JSON integer is accepted)"})]
QuoteRef = Annotated[Any, Meta(extra_json_schema={
    "anyOf": [{"type": "string", "pattern": "^([1-9][0-9]{0,17}|best)$"},
              {"type": "integer", "minimum": 1, "maximum": ID_MAX}],
    "description": "a quote id, or \"best\": the best live quote by DESIGN §4's ranking"})]
Usdc = _decimal(6, 0.000001, 1_000_000_000, USDC_PATTERN, "USDC, at most 6 decimal places")
SignedUsdc = _decimal(6, -1_000_000_000, 1_000_000_000, SIGNED_USDC_PATTERN,
                      "USDC, at most 6 decimal places; > 0 adds, < 0 removes")
SizeUsdc = _decimal(6, 0.000001, 10_000_000, SIZE_PATTERN, "notional in USDC, at most 6 decimal places "
                    "(the market's own range applies: /markets)")
Fraction = _decimal(9, -0.1, 0.1, RATE_PATTERN, "a fraction per 8h interval (0.005 = 0.5%), at most 9 decimal "
                    "places, |rate| <= 0.1")
Price = _decimal(8, 0.00000001, 10_000_000, PRICE_PATTERN, "USD per base unit, at most 8 decimal places")
Seconds = _decimal(3, 0, 9_999, SECONDS_PATTERN, "seconds, at most 3 decimal places (0: the market's default; "
                   "the market's own range applies: /markets)")
Percent = _decimal(2, 0.01, 100, PERCENT_PATTERN, "percent of the position, 0.01 to 100, at most 2 decimal places")
Whole = _decimal(0, 1, 100, WHOLE_PATTERN, "a whole number (10, 10.0 and \"10\" are the same)")
Agent = Annotated[str, Meta(pattern=AGENT_PATTERN, description="base58 Ed25519 public key (a Solana address)")]
ClientId = Annotated[str, Meta(max_length=64, description="idempotency key: a repeat within the window returns "
                                                        "the first result (duplicate: true) and executes nothing")]
Signature = Annotated[str, Meta(pattern=SIGNATURE_PATTERN, description=(
    "base58 Ed25519 signature of the trader over the UTF-8 bytes accept:{request_id}:{quote_id}, with the ids "
    "as sent"))]
# Enums are checked by http_parse (INVALID_FIELD naming the allowed values), stated here.
SideName = Annotated[str, Meta(extra_json_schema={"enum": ["long", "short"]})]
DurationName = Annotated[str, Meta(extra_json_schema={"enum": ["perpetual", "1h", "24h"]})]
MarginAction = Annotated[str, Meta(extra_json_schema={"enum": ["add", "remove"]})]


class _Body(msgspec.Struct, kw_only=True):
    pass


# -- requests -----------------------------------------------------------------------------


class TradeRequestBody(_Body):
    """POST /trade/request: ask for quotes (an RFQ)."""

    market: str
    side: SideName
    size_usdc: SizeUsdc
    leverage: Whole
    max_funding_rate: Fraction
    duration: DurationName = "perpetual"
    expires_in: Seconds | None = None  # default: the market's (30 s)
    agent_id: Agent | None = None
    client_id: ClientId = ""
    auto_accept: bool = False
    target_rate: Fraction | None = None


class TradeQuoteBody(_Body):
    """POST /trade/quote: a firm quote on an RFQ (replaces the maker's earlier quote on it)."""

    request_id: Id
    funding_rate: Fraction
    collateral_usdc: Usdc
    valid_for: Seconds | None = None  # default: the market's (10 s)
    agent_id: Agent | None = None
    client_id: ClientId = ""


class TradeAcceptBody(_Body):
    """POST /trade/accept: take a quote (or ``"best"``), signed over ``accept:{request_id}:{quote_id}``."""

    request_id: Id
    signature: Signature
    quote_id: QuoteRef = "best"
    agent_id: Agent | None = None
    client_id: ClientId = ""


class TradeCloseBody(_Body):
    """POST /trade/close: close a fraction of a position (either party)."""

    position_id: Id
    size_percent: Percent = 100
    agent_id: Agent | None = None
    client_id: ClientId = ""


class TradeCancelBody(_Body):
    """POST /trade/cancel: cancel one's RFQ (``request_id``) or one's quote (``quote_id``) — exactly one."""

    request_id: Id | None = None
    quote_id: Id | None = None
    agent_id: Agent | None = None
    client_id: ClientId = ""


class TradeLiquidateBody(_Body):
    """POST /trade/liquidate: the keeper's call; succeeds only if a side is liquidatable."""

    position_id: Id
    agent_id: Agent | None = None
    client_id: ClientId = ""


class TradeMarginBody(_Body):
    """POST /trade/margin: add to or remove from one's own side's margin.

    Either a signed ``amount_usdc`` (> 0 adds from free, < 0 removes to free), or
    ``action`` ``add``/``remove`` with a positive ``amount_usdc``."""

    position_id: Id
    amount_usdc: SignedUsdc
    action: MarginAction | None = None
    agent_id: Agent | None = None
    client_id: ClientId = ""


class WithdrawBody(_Body):
    """POST /account/withdraw: from free, to an external destination (e.g. a Solana address)."""

    amount_usdc: Usdc
    destination: Annotated[str, Meta(min_length=1, max_length=128)]
    agent_id: Agent | None = None
    client_id: ClientId = ""


class FaucetBody(_Body):
    """POST /dev/faucet (``--dev`` only, unsigned): credit free USDC."""

    agent_id: Agent
    amount_usdc: Usdc


class OracleBody(_Body):
    """POST /dev/oracle (``--dev`` only, unsigned): set a market's price now."""

    market: str
    price: Price
    conf: Price | None = None  # default: 1 bp of the price (at least 1e-8)


# -- responses ----------------------------------------------------------------------------


class ErrorInfo(msgspec.Struct, kw_only=True):
    code: str
    message: str
    detail: dict[str, Any] = {}


class ErrorBody(msgspec.Struct, kw_only=True):
    """Every 4xx/5xx answer."""

    error: ErrorInfo


Event = Annotated[dict[str, Any], Meta(description=(
    "an event in human units: type (its versioned tag), seq, ts_ns, cmd_id, then its fields with "
    "*_e6 amounts as *_usdc decimal strings, prices and rates as decimal strings, ids as strings, "
    "market as its symbol"))]


class CommandResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What an accepted command did. ``seq`` is its last event's; the ids it created or
    touched are named ``request_id``, ``quote_id``, ``position_id``."""

    seq: int
    cmd_id: int
    ts_ns: int
    request_id: str | None = None
    quote_id: str | None = None
    position_id: str | None = None
    duplicate: bool = False  # a repeated client_id: the first result, nothing executed again
    events: list[Event]


class MarketInfo(msgspec.Struct, kw_only=True):
    market: str
    market_id: int
    leverage_max: int
    size_min_usdc: str
    size_max_usdc: str
    taker_fee_bps: int
    maker_fee_bps: int
    liquidation_reward_bps: int
    maintenance_of_initial_bps: int
    oracle_age_max_s: str
    oracle_conf_bps_max: int
    rfq_lifetime_s: list[str]  # [min, default, max]
    quote_lifetime_s: list[str]
    price: str | None  # the last oracle price (None before any)
    conf: str | None
    publish_ns: int
    oracle_source: str = ""  # the provenance of that price ("pyth:<feed id>", "synthetic", ...)


class RfqInfo(msgspec.Struct, kw_only=True):
    request_id: str
    agent_id: str
    market: str
    side: str
    size_usdc: str
    leverage: int
    max_funding_rate: str
    duration: str
    expires_ns: int
    hold_usdc: str
    auto_accept: bool
    target_rate: str | None


class QuoteInfo(msgspec.Struct, kw_only=True):
    quote_id: str
    request_id: str
    agent_id: str
    funding_rate: str
    collateral_usdc: str
    created_ns: int
    expires_ns: int


class PositionInfo(msgspec.Struct, kw_only=True):
    position_id: str
    market: str
    long_agent: str
    short_agent: str
    taker_side: str
    size_usdc: str
    size_opened_usdc: str
    entry_price: str
    margin_long_usdc: str
    margin_short_usdc: str
    funding_rate: str
    opened_ns: int
    expires_ns: int  # 0: perpetual
    unrealized_pnl_long_usdc: str  # at the last oracle price
    status: str  # "open" (closed positions are in the event stream)


class AccountInfo(msgspec.Struct, kw_only=True):
    agent_id: str
    free_usdc: str
    held_usdc: str
    margin_usdc: str
    positions: list[PositionInfo]


class EventsPage(msgspec.Struct, kw_only=True):
    events: list[Event]
    next_from_seq: int  # ask again from here
    last_seq: int  # the venue's last durable seq when this page was read


class Health(msgspec.Struct, kw_only=True):
    status: str  # ok | stopping
    last_seq: int
    server_time_ms: int
    queue_depth: int
    markets: list[str]
    dev: bool
    oracle: dict | None = None  # the feed: source in use per market, failovers, drops (None: no feed)
    # Each projection: name, state (catching_up | live | retrying), seq, lag_seq, lag_s, failures,
    # retry_attempt, failing_seq, last_error, events_applied, batches_from_memory,
    # batches_from_journal; a projection in its own process: process_id, process_exits
    # (docs/projections.md).
    projections: list[dict[str, Any]] = []
    # The hedger (docs/hedging.md): exchanges' health, hedged / residual notional, its lag (None: off).
    hedging: dict[str, Any] | None = None


REQUEST_BODIES = (TradeRequestBody, TradeQuoteBody, TradeAcceptBody, TradeCloseBody, TradeCancelBody,
                  TradeLiquidateBody, TradeMarginBody, WithdrawBody, FaucetBody, OracleBody)
RESPONSES = (ErrorBody, CommandResult, MarketInfo, RfqInfo, QuoteInfo, PositionInfo, AccountInfo, EventsPage,
             Health)
