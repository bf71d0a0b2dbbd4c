"""Rejections are values: a stable machine-readable code, a message, and a detail that
says what would have been valid (required vs available, the allowed range)."""

from __future__ import annotations

from typing import Any

import msgspec


class Rejected(msgspec.Struct, frozen=True, array_like=True, tag="rejected.v1"):
    code: str
    message: str
    detail: dict[str, Any] = {}


# Stable codes. Clients switch on these; never rename one.
DUPLICATE = "DUPLICATE"  # repeated client_id / deposit ref; detail.first_seq
INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"  # free balance below what the command needs
INSUFFICIENT_COLLATERAL = "INSUFFICIENT_COLLATERAL"  # quote collateral below size / max leverage
INSUFFICIENT_MARGIN = "INSUFFICIENT_MARGIN"  # margin removal would break the initial margin
OUT_OF_RANGE = "OUT_OF_RANGE"  # a field outside its documented bounds; detail has min/max
INVALID_FIELD = "INVALID_FIELD"  # a field of the wrong form (empty ref, unknown side, ...)
UNKNOWN_MARKET = "UNKNOWN_MARKET"
UNKNOWN_RFQ = "UNKNOWN_RFQ"
UNKNOWN_QUOTE = "UNKNOWN_QUOTE"
UNKNOWN_POSITION = "UNKNOWN_POSITION"
NOT_OWNER = "NOT_OWNER"  # the agent is not the party the command requires
SELF_QUOTE = "SELF_QUOTE"  # a maker may not quote its own RFQ
RFQ_EXPIRED = "RFQ_EXPIRED"
RFQ_CLOSED = "RFQ_CLOSED"  # already filled or cancelled
QUOTE_EXPIRED = "QUOTE_EXPIRED"
NO_QUOTES = "NO_QUOTES"  # accept of the best quote when there is none
RATE_ABOVE_MAX = "RATE_ABOVE_MAX"
# The oracle's grades (engine/oracle.py), one code each; detail.validity names the grade.
ORACLE_INVALID = "ORACLE_INVALID"  # NonPositive: no price yet (or one not above zero)
ORACLE_VOLATILE = "ORACLE_VOLATILE"  # TooVolatile: too far from the market's short TWAP
ORACLE_STALE = "ORACLE_STALE"  # StaleForMargin: older than the action allows
ORACLE_UNCERTAIN = "ORACLE_UNCERTAIN"  # TooUncertain: conf / price above the market's max
ORACLE_OUT_OF_ORDER = "ORACLE_OUT_OF_ORDER"
NOT_LIQUIDATABLE = "NOT_LIQUIDATABLE"
REMAINDER_TOO_SMALL = "REMAINDER_TOO_SMALL"  # a partial close leaving less than the min size
LIMIT_REACHED = "LIMIT_REACHED"  # a cap (total deposits, a table, per agent) would be exceeded; detail.limit names it


def rejected(code: str, message: str, **detail: Any) -> Rejected:
    return Rejected(code, message, detail)


def limit_reached(limit: str, maximum: int, message: str, **detail: Any) -> Rejected:
    """LIMIT_REACHED: ``limit`` names the EngineConfig field (or engine constant) that was
    reached, ``max`` its value; what else would help the caller is in ``detail``."""
    return Rejected(LIMIT_REACHED, message, {"limit": limit, "max": maximum, **detail})


def out_of_range(field: str, value: int, low: int, high: int) -> Rejected:
    return Rejected(OUT_OF_RANGE, f"{field} {value} is outside [{low}, {high}]",
                    {"field": field, "value": value, "min": low, "max": high})
