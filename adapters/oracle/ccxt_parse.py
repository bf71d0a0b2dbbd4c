"""The CCXT median: tops of books from N exchanges → one price in the engine's units, or a
``Drop`` that says why not. Pure: no I/O; the clock is an argument.

Per exchange, ``bid`` and ``ask`` are converted exactly to ``_e8`` (ccxt parses the exchange's
decimal strings into floats; ``repr`` gives that decimal back for up to 15 significant
digits, and a value that is not a whole number of 1e-8 USD is dropped, never rounded). The
exchange's mid is ``(bid + ask) / 2``, kept exactly as ``bid_e8 + ask_e8`` (twice the mid).

Across exchanges (``aggregate``): only *fresh* quotes count — the exchange answered this
round and its timestamp is at most ``stale_ns`` old; fewer than ``sources_min`` fresh → no
price (``too_few_sources``). A quote whose mid is more than ``divergence_bps_max`` from the
median of the fresh mids is left out; if fewer than ``sources_min`` remain → no price.
The price is the median of the mids kept, rounded half-even to 1e-8 USD — the one rounding,
at most half a unit; the confidence is the spread of the sources kept: the range of their
mids, but never less than the widest half bid-ask spread among them (one source alone is not
certain), rounded up. ``publish_ns`` is the oldest kept exchange timestamp (the price is no
fresher than its oldest input); the provenance is ``ccxt:<name>+<name>...`` of the kept,
with the kept names and their spread (max − min of their mids in bps of the price, rounded up)
for the ``OracleUpdate``'s ``sources`` and ``spread_bps``.
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import NamedTuple

import msgspec

from adapters.oracle import ccxt_schemas as s
from engine.units import BPS_SCALE, NS_PER_MS, PRICE_E8_MAX

# Drop reasons (labels of agentperp_oracle_dropped; a quote's reasons are per exchange)
MALFORMED = "malformed"  # not ccxt's ticker shape, no bid or ask
NON_POSITIVE = "non_positive"
INEXACT = "inexact"  # not a whole number of 1e-8 USD
OUT_OF_BOUNDS = "out_of_bounds"  # above the engine's PRICE_E8_MAX
CROSSED = "crossed"  # bid above ask
TOO_FEW_SOURCES = "too_few_sources"  # fewer than sources_min fresh (or agreeing) exchanges

SOURCE_PREFIX = "ccxt"
E8 = Decimal(10**8)


class Drop(NamedTuple):
    reason: str
    detail: str


class Quote(NamedTuple):
    """One exchange's top of book for one market, in engine units."""
    exchange: str
    bid_e8: int
    ask_e8: int
    ts_ns: int  # the exchange's timestamp (or when we received it, if it gave none)

    @property
    def mid2_e8(self) -> int:
        """Twice the mid (exact)."""
        return self.bid_e8 + self.ask_e8


class Median(NamedTuple):
    price_e8: int
    conf_e8: int
    publish_ns: int
    source: str  # ccxt:binanceusdm+okx
    kept: tuple[str, ...]
    diverged: tuple[str, ...]  # fresh, but too far from the median
    stale: tuple[str, ...]  # answered, but with a timestamp older than stale_ns
    spread_bps: int  # max - min of the kept mids, in bps of the price, rounded up (≤ BPS_SCALE)


def price_to_e8(value: float) -> int | Drop:
    """A ccxt float price → ``_e8``, exactly, or why not."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return Drop(MALFORMED, f"price {value!r} is not a finite number")
    if value <= 0:
        return Drop(NON_POSITIVE, f"price {value!r}")
    try:
        scaled = Decimal(repr(value)) * E8
    except InvalidOperation:
        return Drop(MALFORMED, f"price {value!r}")
    if scaled != scaled.to_integral_value():
        return Drop(INEXACT, f"{value!r} is not a whole number of 1e-8 USD")
    e8 = int(scaled)
    if e8 > PRICE_E8_MAX:
        return Drop(OUT_OF_BOUNDS, f"{value!r} above the engine's price bound {PRICE_E8_MAX} e8")
    return e8


def parse_quote(exchange: str, ticker: object, received_ns: int) -> Quote | Drop:
    """One ccxt ticker → a ``Quote`` or a ``Drop``."""
    try:
        top = s.book_top(ticker)
    except msgspec.ValidationError as error:
        return Drop(MALFORMED, f"{exchange}: {str(error)[:160]}")
    if top.bid is None or top.ask is None:
        return Drop(MALFORMED, f"{exchange} {top.symbol}: no bid or ask")
    bid, ask = price_to_e8(top.bid), price_to_e8(top.ask)
    for side in (bid, ask):
        if isinstance(side, Drop):
            return Drop(side.reason, f"{exchange} {top.symbol}: {side.detail}")
    if bid > ask:
        return Drop(CROSSED, f"{exchange} {top.symbol}: bid {top.bid!r} above ask {top.ask!r}")
    ts_ns = top.timestamp * NS_PER_MS if top.timestamp is not None and top.timestamp > 0 else received_ns
    return Quote(exchange, bid, ask, ts_ns)


def source_of(kept: tuple[str, ...]) -> str:
    return f"{SOURCE_PREFIX}:{'+'.join(kept)}"


def _median(values: list[Fraction]) -> Fraction:
    ordered = sorted(values)
    n = len(ordered)
    return ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2


def aggregate(quotes: list[Quote], *, now_ns: int, stale_ns: int, divergence_bps_max: int,
              sources_min: int, order: tuple[str, ...]) -> Median | Drop:
    """The quotes of one market, one per exchange that answered → the median, or why not.
    ``order`` is the configured exchange order (the provenance lists the kept in it)."""
    assert sources_min >= 1, "ccxt median: at least one source"
    fresh = [q for q in quotes if now_ns - q.ts_ns <= stale_ns]
    stale = tuple(q.exchange for q in quotes if now_ns - q.ts_ns > stale_ns)
    if len(fresh) < sources_min:
        return Drop(TOO_FEW_SOURCES, f"{len(fresh)} fresh of {len(order)} exchanges, {sources_min} needed"
                    + (f" (stale: {', '.join(stale)})" if stale else ""))
    median2 = _median([Fraction(q.mid2_e8) for q in fresh])
    kept = [q for q in fresh if abs(q.mid2_e8 - median2) * BPS_SCALE <= divergence_bps_max * median2]
    diverged = tuple(q.exchange for q in fresh if q not in kept)
    if len(kept) < sources_min:
        return Drop(TOO_FEW_SOURCES, f"{len(kept)} of {len(fresh)} fresh exchanges within {divergence_bps_max} bps "
                    f"of the median, {sources_min} needed (diverged: {', '.join(diverged)})")
    price_e8 = round(_median([Fraction(q.mid2_e8) for q in kept]) / 2)  # Fraction rounds half to even
    mids2 = [q.mid2_e8 for q in kept]
    spread = Fraction(max(mids2) - min(mids2), 2)
    half_book = max(Fraction(q.ask_e8 - q.bid_e8, 2) for q in kept)
    conf_e8 = math.ceil(max(spread, half_book))
    # capped at the engine's bound (100 %), which only a divergence_bps_max in the thousands can
    # let the kept mids reach (default 50): a price still goes through, its spread shown as 100 %
    spread_bps = min(BPS_SCALE, math.ceil(spread * BPS_SCALE / max(price_e8, 1)))
    names = tuple(name for name in order if any(q.exchange == name for q in kept))
    return Median(price_e8, conf_e8, min(q.ts_ns for q in kept), source_of(names), names, diverged, stale,
                  spread_bps)


class NotJson(NamedTuple):
    """A websocket frame that looked like JSON and was not (ccxt would raise on it)."""
    text: str


WS_SHAPES = {  # kind -> the data pushes we subscribe to, by channel (OKX) or event (Binance)
    "binanceusdm": {"bookTicker": s.BinanceBookTicker},
    "okx": {"bbo-tbt": s.OkxBboPush, "tickers": s.OkxTickersPush},
}


def screen_ws(kind: str, message: object) -> Drop | None:
    """A decoded websocket frame of ``kind`` (``binanceusdm``, ``okx``) → None when ccxt may read
    it (an answer to a request, an event, a data push of the shape we subscribed to, OKX's
    ``pong``), else why not (``malformed``). The prices' values are ``parse_quote``'s concern."""
    if isinstance(message, NotJson):
        return Drop(MALFORMED, f"not JSON: {message.text[:80]!r}")
    try:
        if kind == "okx":
            return _screen_okx(message)
        return _screen_binance(message)
    except msgspec.ValidationError as error:
        return Drop(MALFORMED, str(error)[:160])


def _screen_binance(message: object) -> Drop | None:
    if not isinstance(message, dict):
        return Drop(MALFORMED, f"a {type(message).__name__}, not an object")
    if "id" in message and ("result" in message or "error" in message):
        msgspec.convert(message, s.BinanceReply, strict=True)
        return None
    event = message.get("e", "bookTicker")  # Binance's bookTicker once came without "e"
    shape = WS_SHAPES["binanceusdm"].get(event) if isinstance(event, str) else None
    if shape is None:
        return Drop(MALFORMED, f"an event not subscribed to: {str(message.get('e'))[:40]!r}")
    msgspec.convert(message, shape, strict=True)
    return None


def _screen_okx(message: object) -> Drop | None:
    if message == "pong":
        return None
    if not isinstance(message, dict):
        return Drop(MALFORMED, f"a {type(message).__name__}, not an object")
    if "event" in message:
        msgspec.convert(message, s.OkxEvent, strict=True)
        return None
    arg = message.get("arg")
    channel = arg.get("channel") if isinstance(arg, dict) else None
    shape = WS_SHAPES["okx"].get(channel) if isinstance(channel, str) else None
    if shape is None:
        return Drop(MALFORMED, "no event and no channel subscribed to")
    msgspec.convert(message, shape, strict=True)
    return None
