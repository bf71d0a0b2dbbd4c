"""The simulator's order book: levels around a reference price, filled against by orders.

Pure state, no I/O and no clock: the server passes ``now_s``. Prices and quantities are
``Decimal`` (the exchange's own decimal strings); nothing here is venue money.

The book is rebuilt (``refresh``) from the reference price every ``refresh_s`` or when the
reference moves: a mid that wanders a few ticks around the reference, ``levels`` levels per
side spaced by ``level_step_ticks``, each holding ``depth_qty`` × a seeded factor in
[0.5, 1.5]. Liquidity taken by fills stays taken until the next refresh, so a burst of
orders walks the book; short depth is how partial fills happen.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal

LEVELS_MAX = 500  # a book deeper than this is a configuration error, not a simulation


@dataclass
class SymbolSpec:
    """One contract as exchangeInfo describes it."""

    symbol: str  # BTCUSDT
    base: str  # BTC
    tick: Decimal  # PRICE_FILTER tickSize
    step: Decimal  # LOT_SIZE stepSize
    min_qty: Decimal
    max_qty: Decimal
    min_notional: Decimal
    price_precision: int
    quantity_precision: int


@dataclass
class Book:
    spec: SymbolSpec
    reference: Decimal
    depth_qty: Decimal  # mean quantity per level
    seed: int = 0
    levels: int = 20
    level_step_ticks: int = 1
    spread_ticks: int = 2  # best ask - best bid, in ticks
    wander_ticks: int = 5  # the mid moves at most this far from the reference per refresh
    refresh_s: float = 1.0
    bids: list[list[Decimal]] = field(default_factory=list)  # [price, qty], best first
    asks: list[list[Decimal]] = field(default_factory=list)
    refreshed_s: float = -1.0e18
    generation: int = 0

    def __post_init__(self) -> None:
        assert 0 < self.levels <= LEVELS_MAX, f"levels must be 1..{LEVELS_MAX}"

    def set_reference(self, price: Decimal, now_s: float) -> None:
        """Move the reference price and rebuild the book around it at once."""
        self.reference = Decimal(price)
        self.refresh(now_s)

    def maybe_refresh(self, now_s: float) -> None:
        if now_s - self.refreshed_s >= self.refresh_s:
            self.refresh(now_s)

    def refresh(self, now_s: float) -> None:
        self.generation += 1
        rng = random.Random(f"{self.seed}:{self.spec.symbol}:{self.generation}")
        tick = self.spec.tick
        ref_ticks = int((self.reference / tick).to_integral_value(ROUND_HALF_EVEN))
        mid_ticks = ref_ticks + rng.randint(-self.wander_ticks, self.wander_ticks)
        bid0 = mid_ticks - self.spread_ticks // 2
        ask0 = bid0 + max(1, self.spread_ticks)
        self.bids, self.asks = [], []
        for i in range(self.levels):
            for side, start, sign in ((self.bids, bid0, -1), (self.asks, ask0, 1)):
                price_ticks = start + sign * i * self.level_step_ticks
                if price_ticks <= 0:
                    continue
                qty = self._lot(self.depth_qty * Decimal(str(0.5 + rng.random())))
                if qty > 0:
                    side.append([tick * price_ticks, qty])
        self.refreshed_s = now_s

    def _lot(self, qty: Decimal) -> Decimal:
        step = self.spec.step
        return (qty / step).to_integral_value(ROUND_DOWN) * step

    def mid(self) -> Decimal | None:
        if not self.bids or not self.asks:
            return None
        return (self.bids[0][0] + self.asks[0][0]) / 2

    def take(self, side: str, qty: Decimal, limit: Decimal | None) -> list[tuple[Decimal, Decimal]]:
        """Take up to ``qty`` from the opposite side at prices within ``limit``; return the fills.

        ``side`` is the taker's (BUY takes asks at or below ``limit``, SELL takes bids at or
        above it); ``limit=None`` is a market order. Taken quantity leaves the book.
        """
        levels = self.asks if side == "BUY" else self.bids
        fills: list[tuple[Decimal, Decimal]] = []
        remaining = qty
        while remaining > 0 and levels:
            price, available = levels[0]
            if limit is not None and ((side == "BUY" and price > limit) or (side == "SELL" and price < limit)):
                break
            got = min(available, remaining)
            fills.append((price, got))
            remaining -= got
            if got == available:
                levels.pop(0)
            else:
                levels[0][1] = available - got
        return fills


@dataclass
class Position:
    """One account's position in one contract (one-way mode), in base units; shared by every
    simulated exchange."""

    amount: Decimal = Decimal(0)  # signed, base units
    entry: Decimal = Decimal(0)
    realized: Decimal = Decimal(0)
    update_ms: int = 0

    def fill(self, signed: Decimal, price: Decimal, now_ms: int) -> Decimal:
        """Apply a fill of ``signed`` base units at ``price``; return the PnL it realized."""
        before = self.amount
        after = before + signed
        pnl = Decimal(0)
        if before == 0 or (before > 0) == (signed > 0):
            self.entry = (abs(before) * self.entry + abs(signed) * price) / abs(after)
        else:
            closed = min(abs(signed), abs(before))
            pnl = closed * (price - self.entry) * (1 if before > 0 else -1)
            self.realized += pnl
            if abs(signed) > abs(before):
                self.entry = price
            elif after == 0:
                self.entry = Decimal(0)
        self.amount = after
        self.update_ms = now_ms
        return pnl


@dataclass
class Faults:
    """What to break, changed at any time by tests or ``POST /sim/faults``."""

    latency_s: float = 0.0  # added before every answer
    latency_by_path_s: dict[str, float] = field(default_factory=dict)  # e.g. "/fapi/v1/order": 2.0
    outage: bool = False  # every request answers a bare 503, every websocket is closed (the exchange is down)
    ws_down: bool = False  # websockets only: open ones closed, handshakes answered 503 (REST still up)


class BookVenue:
    """What every simulated exchange does with its books (``self.books``: key -> Book, and
    ``self.clock``: seconds): tests and the venue move the reference price and the depth."""

    books: dict
    clock: object
    faults: Faults
    requests_by_path: dict[str, int]  # REST calls by route path (counted_as_rest)
    ws = None  # a TopStreams (sim/ws.py) when the simulator serves websockets: told when a book moves

    def set_faults(self, body: dict) -> dict:
        """Apply ``POST /sim/faults``'s body (``latency_s``, ``outage``, ``ws_down``); the faults now."""
        for name in ("latency_s", "outage", "ws_down"):
            if name in body:
                setattr(self.faults, name, body[name])
        return {"latency_s": self.faults.latency_s, "outage": self.faults.outage, "ws_down": self.faults.ws_down}

    def set_reference(self, key: str, price: Decimal | str | float) -> None:
        self.books[key].set_reference(Decimal(str(price)), self.clock())
        self._moved(key)

    def set_depth(self, key: str, qty_per_level: Decimal | str) -> None:
        book = self.books[key]
        book.depth_qty = Decimal(str(qty_per_level))
        book.refresh(self.clock())
        self._moved(key)

    def _moved(self, key: str) -> None:
        if self.ws is not None:
            self.ws.poke(key)

    def counted_as_rest(self, request) -> bool:
        """Whether ``request`` is a REST call (not a control path, not a websocket handshake),
        counted in ``requests_by_path`` by its route's path — never the client's, so a client
        cannot grow the map."""
        if request.path.startswith("/sim/") or request.headers.get("Upgrade", "").lower() == "websocket":
            return False
        route = request.match_info.route.resource
        if route is not None:
            self.requests_by_path[route.canonical] = self.requests_by_path.get(route.canonical, 0) + 1
        return True

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def book(self, key: str) -> Book:
        book = self.books[key]
        book.maybe_refresh(self.clock())
        return book
