"""Hermes payloads -> prices in the engine's integer units, exactly, or a ``Drop`` that says
why not. Pure translation: no I/O, no clock (ordering and clock skew are the feed's screen,
``adapters/oracle/feed.py``, the same for every source).

A Pyth value is ``mantissa * 10**expo`` USD; the engine's unit is 1e-8 USD (``_e8``), so
``price_e8 = mantissa * 10**(expo + 8)``. With ``expo >= -8`` that is a multiplication;
below, the mantissa must be a multiple of ``10**(-8 - expo)`` or the value is not
representable and is dropped (``inexact``) — never rounded. The confidence interval gets
the same rule. BTC/USD, ETH/USD and SOL/USD publish at ``expo = -8``: always exact.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import msgspec

from adapters.oracle import pyth_schemas as s
from engine.units import NS_PER_S, PRICE_E8_MAX

EXPO_ABS_MAX = 18  # Pyth publishes -12..0; anything beyond this is hostile, not a price
PUBLISH_TIME_S_MAX = 2**62 // NS_PER_S  # publish_ns must fit int64 with room
_MANTISSA = re.compile(r"-?[0-9]{1,20}")
_FEED_ID = re.compile(r"[0-9a-f]{64}")
INT64_MAX = 2**63 - 1

# Drop reasons: stable words, the label of agentperp_oracle_dropped and of the log line.
MALFORMED = "malformed"  # not JSON, or not Hermes' shape
UNKNOWN_FEED = "unknown_feed"  # a feed id no market is configured with
NON_POSITIVE = "non_positive"  # price <= 0
EXPO_OUT_OF_RANGE = "expo_out_of_range"
INEXACT = "inexact"  # not a whole number of 1e-8 USD
OUT_OF_BOUNDS = "out_of_bounds"  # above the engine's PRICE_E8_MAX, or a publish time beyond int64 ns


class Drop(NamedTuple):
    reason: str
    detail: str
    feed_id: str = ""


class PythPrice(NamedTuple):
    """One feed's price in engine units."""
    feed_id: str
    market: int
    price_e8: int
    conf_e8: int
    publish_ns: int
    ema_price_e8: int | None  # None when the EMA does not convert exactly


def source_of(feed_id: str) -> str:
    """The ``OracleUpdate.source`` of a Pyth price: the source and the feed id (provenance)."""
    return f"pyth:{feed_id}"


def normalize_feed_id(text: str) -> str | None:
    """``0x``-prefixed or not, any case -> 64 lower-case hex digits (Hermes' spelling), or None."""
    text = text.lower()
    if text.startswith("0x"):
        text = text[2:]
    return text if _FEED_ID.fullmatch(text) else None


def to_e8(mantissa: int, expo: int) -> int | None:
    """``mantissa * 10**expo`` in units of 1e-8, or None when that is not a whole number."""
    shift = expo + 8
    if shift >= 0:
        return mantissa * 10**shift
    quotient, remainder = divmod(mantissa, 10**-shift)
    return quotient if remainder == 0 else None


def decode(body: bytes | str) -> s.PriceUpdate | Drop:
    try:
        return s.DECODER.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        return Drop(MALFORMED, str(error)[:200])


def parse_price(feed: s.ParsedPriceUpdate, markets_by_feed: dict[str, int]) -> PythPrice | Drop:
    """One parsed feed -> its price, if a configured market takes it and it converts exactly."""
    feed_id = normalize_feed_id(feed.id)
    if feed_id is None:
        return Drop(MALFORMED, f"feed id {feed.id[:80]!r} is not 64 hex digits")
    market = markets_by_feed.get(feed_id)
    if market is None:
        return Drop(UNKNOWN_FEED, "no market is configured with this feed id", feed_id)
    converted = _convert(feed.price, feed_id)
    if isinstance(converted, Drop):
        return converted
    price_e8, conf_e8, publish_ns = converted
    ema = _convert(feed.ema_price, feed_id) if feed.ema_price is not None else None
    ema_price_e8 = None if ema is None or isinstance(ema, Drop) else ema[0]
    return PythPrice(feed_id, market, price_e8, conf_e8, publish_ns, ema_price_e8)


def parse_update(body: bytes | str, markets_by_feed: dict[str, int]) -> tuple[list[PythPrice], list[Drop]]:
    """A latest answer or one SSE ``data:`` payload -> its prices and what was dropped."""
    update = decode(body)
    if isinstance(update, Drop):
        return [], [update]
    if update.parsed is None:
        return [], [Drop(MALFORMED, "no parsed prices (ask with parsed=true)")]
    prices, drops = [], []
    for feed in update.parsed:
        parsed = parse_price(feed, markets_by_feed)
        (drops if isinstance(parsed, Drop) else prices).append(parsed)
    return prices, drops


def _convert(p: s.RpcPrice, feed_id: str) -> tuple[int, int, int] | Drop:
    if not _MANTISSA.fullmatch(p.price) or not _MANTISSA.fullmatch(p.conf) or p.conf.startswith("-"):
        return Drop(MALFORMED, f"price {p.price[:40]!r} / conf {p.conf[:40]!r} are not integers", feed_id)
    mantissa, conf = int(p.price), int(p.conf)
    if mantissa > INT64_MAX or conf > 2**64 - 1:
        return Drop(OUT_OF_BOUNDS, f"mantissa {p.price} beyond i64 / conf {p.conf} beyond u64", feed_id)
    if mantissa <= 0:
        return Drop(NON_POSITIVE, f"price mantissa {mantissa}", feed_id)
    if not -EXPO_ABS_MAX <= p.expo <= EXPO_ABS_MAX:
        return Drop(EXPO_OUT_OF_RANGE, f"expo {p.expo} outside [-{EXPO_ABS_MAX}, {EXPO_ABS_MAX}]", feed_id)
    price_e8, conf_e8 = to_e8(mantissa, p.expo), to_e8(conf, p.expo)
    if price_e8 is None or conf_e8 is None:
        return Drop(INEXACT, f"{p.price}e{p.expo} (conf {p.conf}) is not a whole number of 1e-8 USD", feed_id)
    if price_e8 > PRICE_E8_MAX or conf_e8 > PRICE_E8_MAX:
        return Drop(OUT_OF_BOUNDS, f"{p.price}e{p.expo} (conf {p.conf}) above the engine's price bound "
                                  f"{PRICE_E8_MAX} e8", feed_id)
    if not 1 <= p.publish_time <= PUBLISH_TIME_S_MAX:
        return Drop(OUT_OF_BOUNDS, f"publish_time {p.publish_time} outside [1, {PUBLISH_TIME_S_MAX}]", feed_id)
    return price_e8, conf_e8, p.publish_time * NS_PER_S
