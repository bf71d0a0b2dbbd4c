"""What the CCXT median source reads from ccxt: the top of the book in ccxt's unified ticker
shape (``fetch_bids_asks`` — Binance's ``/fapi/v1/ticker/bookTicker`` — or ``fetch_tickers`` —
OKX's ``/api/v5/market/tickers``). ccxt is the parser of each exchange's own wire format;
we validate the few unified fields we use, with ccxt's names: ``bid``, ``ask`` (floats
parsed from the exchange's decimal strings) and ``timestamp`` (ms, the exchange's)."""

from __future__ import annotations

import msgspec


class BookTop(msgspec.Struct, frozen=True, gc=False):
    symbol: str
    bid: float | None = None
    ask: float | None = None
    timestamp: int | None = None  # ms; None when the exchange did not say


def book_top(ticker: object) -> BookTop:
    """A ccxt ticker dict → ``BookTop`` (``msgspec.ValidationError`` when it is not one)."""
    return msgspec.convert(ticker, BookTop, strict=True)
