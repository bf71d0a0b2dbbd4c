"""What the CCXT median source reads from ccxt: the top of the book in ccxt's unified ticker
shape (``fetch_bids_asks`` — Binance's ``/fapi/v1/ticker/bookTicker`` — or ``fetch_tickers`` —
OKX's ``/api/v5/market/tickers``). ccxt is the parser of each exchange's own wire format;
we validate the few unified fields we use, with ccxt's names: ``bid``, ``ask`` (floats
parsed from the exchange's decimal strings) and ``timestamp`` (ms, the exchange's)."""

from __future__ import annotations

from typing import Annotated

import msgspec


class BookTop(msgspec.Struct, frozen=True, gc=False):
    symbol: str
    bid: float | None = None
    ask: float | None = None
    timestamp: int | None = None  # ms; None when the exchange did not say


def book_top(ticker: object) -> BookTop:
    """A ccxt ticker dict → ``BookTop`` (``msgspec.ValidationError`` when it is not one)."""
    return msgspec.convert(ticker, BookTop, strict=True)


# -- the websocket pushes ccxt pro reads for us, in each exchange's own field names ----------
# Checked before ccxt parses them (``ccxt_parse.screen_ws``): ccxt's handlers raise on a frame of
# the wrong shape, and an exception there stops its receive loop for good, silently.

PRICE_TEXT_LEN_MAX = 41  # "12345678901234567890.12345678901234567890": far above any bound, parsed exactly
Decimal = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{1,20}(\.[0-9]{1,20})?$", max_length=PRICE_TEXT_LEN_MAX)]
Millis = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{1,16}$")]  # OKX's ms timestamps are strings


class BinanceBookTicker(msgspec.Struct, frozen=True, gc=False):
    """Binance USDⓈ-M ``<symbol>@bookTicker``: ``{"e": "bookTicker", "u", "E", "T", "s", "b", "B", "a", "A"}``."""
    s: str
    b: Decimal
    B: Decimal
    a: Decimal
    A: Decimal
    e: str = "bookTicker"
    E: int | None = None  # event time, ms (ccxt's timestamp)
    T: int | None = None  # transaction time, ms
    u: int | None = None  # update id


class BinanceReply(msgspec.Struct, frozen=True, gc=False):
    """An answer to a request: ``{"result": null, "id": 1}`` or ``{"error": {"code", "msg"}, "id": 1}``."""
    id: int | None
    result: object = None
    error: dict | None = None


class OkxArg(msgspec.Struct, frozen=True, gc=False):
    channel: str
    instId: str


class OkxBbo(msgspec.Struct, frozen=True, gc=False):
    """One ``bbo-tbt`` entry: ``{"asks": [[px, sz, "0", orders]], "bids": [...], "ts"}``."""
    asks: Annotated[list[tuple[Decimal, str, str, str]], msgspec.Meta(max_length=1)]  # the size is not read
    bids: Annotated[list[tuple[Decimal, str, str, str]], msgspec.Meta(max_length=1)]
    ts: Millis
    seqId: int | None = None


class OkxTicker(msgspec.Struct, frozen=True, gc=False):
    """One ``tickers`` entry (the fields we and ccxt read of it)."""
    instId: str
    bidPx: Decimal
    askPx: Decimal
    ts: Millis


class OkxBboPush(msgspec.Struct, frozen=True, gc=False):
    arg: OkxArg
    data: Annotated[list[OkxBbo], msgspec.Meta(min_length=1, max_length=1)]


class OkxTickersPush(msgspec.Struct, frozen=True, gc=False):
    arg: OkxArg
    data: Annotated[list[OkxTicker], msgspec.Meta(min_length=1, max_length=1)]


class OkxEvent(msgspec.Struct, frozen=True, gc=False):
    """``{"event": "subscribe"|"unsubscribe"|"error"|"notice", ...}``: ccxt handles these."""
    event: str
    code: str | None = None
    msg: str | None = None
