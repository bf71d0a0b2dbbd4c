"""What an agent knows from the venue's streams, folded into state: its own account and
positions (``AccountBook``, from the private ``account`` stream), the venue's open interest
by taker side (``OpenInterest``, from the public ``fills``/``closes``/``liquidations``
streams), and its risk view (``protocol.risk.risk_view``, the very function behind
``GET /agents/{agent}/risk``).

Both are plain reducers: ``apply(event)`` for each event in seq order, no I/O, so a strategy
uses them the same way live (``MakerAgent`` passes every event to ``on_event``) and in
``replay backtest``.
"""

from __future__ import annotations

from engine import events as ev
from engine.markets import EngineConfig
from protocol.risk import Holding, RiskView, risk_view

__all__ = ["AccountBook", "OpenInterest", "Holding", "RiskView", "risk_view"]

_MARGINS = (ev.MARGIN_LONG, ev.MARGIN_SHORT)


class AccountBook:
    """One agent's free, held and position margins, following the transfers of every event.

    ``free_e6`` starts at ``capital_e6``: an agent that subscribes after its deposit (or a
    backtest, which credits the deposit before the first recorded command) says what it
    started with. Positions are learned from ``PositionOpened`` where the agent is a side and
    forgotten at their final close or liquidation; funding (``FundingSettled``, columns
    rather than transfers) moves their margins. ``equity(prices)`` marks them to the prices.
    """

    def __init__(self, agent: str = "", capital_e6: int = 0) -> None:
        self.agent = agent
        self.free_e6 = capital_e6
        self.held_e6 = 0
        # position_id -> [market, sign, size, size_open, entry, margin, margin_open]
        self.positions: dict[int, list[int]] = {}
        self.realized_pnl_e6 = 0
        self.funding_e6 = 0  # received (+) or paid (-)

    def apply(self, event) -> None:
        kind = type(event)
        if kind is ev.PositionOpened and self.agent in (event.long_agent, event.short_agent):
            sign = 1 if event.long_agent == self.agent else -1
            margin = event.margin_long_e6 if sign > 0 else event.margin_short_e6
            self.positions[event.position_id] = [event.market, sign, event.size_e6, event.size_e6,
                                                 event.entry_price_e8, 0, margin]
        elif kind is ev.FundingSettled:
            for position_id, long_to_short in zip(event.position_ids, event.long_to_short_e6):
                p = self.positions.get(position_id)
                if p is not None:
                    moved = -p[1] * long_to_short  # a long pays long_to_short, a short receives it
                    p[5] += moved
                    self.funding_e6 += moved
            return
        for t in getattr(event, "transfers", ()):
            self._transfer(t.debit, t.debit_ref, -t.amount_e6)
            self._transfer(t.credit, t.credit_ref, t.amount_e6)
        if kind is ev.PositionClosed and event.position_id in self.positions:
            p = self.positions[event.position_id]
            self.realized_pnl_e6 += p[1] * event.pnl_long_e6
            self.funding_e6 -= p[1] * event.funding_long_to_short_e6
            p[2] = event.remaining_size_e6
            if event.remaining_size_e6 == 0:
                del self.positions[event.position_id]
        elif kind is ev.PositionLiquidated and event.position_id in self.positions:
            p = self.positions.pop(event.position_id)
            self.realized_pnl_e6 += p[1] * event.pnl_long_e6
            self.funding_e6 -= p[1] * event.funding_long_to_short_e6

    def _transfer(self, account: int, ref, amount_e6: int) -> None:
        if account == ev.FREE and ref == self.agent:
            self.free_e6 += amount_e6
        elif account == ev.HELD and ref == self.agent:
            self.held_e6 += amount_e6
        elif account in _MARGINS and ref in self.positions:
            p = self.positions[ref]
            if (account == ev.MARGIN_LONG) == (p[1] > 0):
                p[5] += amount_e6

    def holdings(self) -> list[Holding]:
        return [Holding(pid, p[0], p[1], p[2], p[3], p[4], p[5], p[6]) for pid, p in self.positions.items()]

    def exposure_e6(self, market: int) -> int:
        """Net size at entry in ``market`` (long +), micro-USDC."""
        return sum(p[1] * p[2] for p in self.positions.values() if p[0] == market)

    def equity_e6(self, prices_e8: dict[int, int]) -> int:
        """free + held + margins + unrealized PnL at ``prices_e8`` (a market without a price: at entry)."""
        total = self.free_e6 + self.held_e6
        for market, sign, size, _, entry, margin, _ in self.positions.values():
            price = prices_e8.get(market, 0)
            total += margin + (sign * round(size * (price - entry) / entry) if price else 0)
        return total

    def risk(self, prices_e8: dict[int, int], config: EngineConfig) -> RiskView:
        return risk_view(self.agent, self.free_e6, self.held_e6, self.holdings(), prices_e8, config)


class OpenInterest:
    """The venue's open interest per market split by the **taker's** side — a public view.

    Every position has a long and a short, so long OI always equals short OI; what tells
    the market's balance is who asked: takers long (makers carry the short) against takers
    short. ``imbalance(market)`` is ``(taker long − taker short) / total`` in [-1, 1]
    (0 with no open interest).
    """

    def __init__(self) -> None:
        self.positions: dict[int, tuple[int, int, int]] = {}  # position_id -> (market, taker sign, size)
        self.long_e6: dict[int, int] = {}
        self.short_e6: dict[int, int] = {}

    def apply(self, event) -> None:
        kind = type(event)
        if kind is ev.PositionOpened:
            sign = 1 if event.taker_side == "long" else -1
            self.positions[event.position_id] = (event.market, sign, event.size_e6)
            self._add(event.market, sign, event.size_e6)
        elif kind is ev.PositionClosed and event.position_id in self.positions:
            market, sign, size = self.positions[event.position_id]
            self._add(market, sign, -event.closed_size_e6)
            if event.remaining_size_e6 == 0:
                del self.positions[event.position_id]
            else:
                self.positions[event.position_id] = (market, sign, event.remaining_size_e6)
        elif kind is ev.PositionLiquidated and event.position_id in self.positions:
            market, sign, size = self.positions.pop(event.position_id)
            self._add(market, sign, -size)

    def _add(self, market: int, sign: int, size_e6: int) -> None:
        book = self.long_e6 if sign > 0 else self.short_e6
        book[market] = book.get(market, 0) + size_e6

    def total_e6(self, market: int) -> int:
        return self.long_e6.get(market, 0) + self.short_e6.get(market, 0)

    def imbalance(self, market: int) -> float:
        total = self.total_e6(market)
        return 0.0 if total <= 0 else (self.long_e6.get(market, 0) - self.short_e6.get(market, 0)) / total
