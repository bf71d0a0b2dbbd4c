"""The market-making strategy interface of ``backtest`` (and of the reference makers in
``agents/``, which implement the same Protocol).

A strategy is a class built as ``cls(seed=SEED)``; all its randomness must come from that
seed, so a backtest is deterministic for a given journal and seed. The backtest calls:

- ``on_start(config, agent)`` once: the venue's ``EngineConfig`` (markets, their max
  leverage, fees) and the agent key the strategy trades as;
- ``on_rfq(rfq, oracle_price_e8, now_ns)`` for every RFQ the venue opens: answer a
  ``QuoteIntent`` (rate per 8h × 1e9 that the taker pays, firm collateral in micro-USDC,
  lifetime in ms; 0 = the market's default) or ``None`` to pass. ``oracle_price_e8`` is the
  market's last price (0 before the first one);
- ``on_fill(position, now_ns)`` when one of its quotes is filled (``engine.views.PositionView``);
- ``on_event(event, now_ns)`` for every event of the venue (``engine.events``), its own and
  everyone's, in seq order — oracle updates, closes, liquidations, funding;
- ``hedge_pnl(now_ns)`` (optional, only for a strategy that hedges off the venue, e.g. the
  arbitrage maker) at every ``Tick`` and at the end: its off-venue hedge's ``HedgePnl``, added
  to the venue equity so the backtest's PnL, drawdown and Sharpe are those of a hedged book.

Hooks other than ``on_rfq`` are optional: inherit ``BaseStrategy`` for no-op defaults.
A quote must respect the venue's rules (rate <= the RFQ's max, collateral >= size / the
market's max leverage, enough free balance) or the venue rejects it like any maker's.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol, runtime_checkable

from engine.markets import EngineConfig
from engine.views import PositionView, RfqView


class QuoteIntent(NamedTuple):
    """What a strategy answers to an RFQ (engine units)."""

    funding_rate_e9: int
    collateral_e6: int
    valid_for_ms: int = 0


class HedgePnl(NamedTuple):
    """An off-venue hedge's PnL so far (micro-USDC, rounded once from the hedge's float book)."""

    cost_e6: int  # fees + price impact paid to trade the hedge (>= 0, a cost)
    funding_e6: int  # the exchange's funding received (+) or paid (-) by the hedge
    mark_e6: int  # the hedge's mark-to-market at the last price

    @property
    def total_e6(self) -> int:
        return self.mark_e6 + self.funding_e6 - self.cost_e6


@runtime_checkable
class Strategy(Protocol):
    seed: int

    def on_start(self, config: EngineConfig, agent: str) -> None: ...

    def on_rfq(self, rfq: RfqView, oracle_price_e8: int, now_ns: int) -> QuoteIntent | None: ...

    def on_fill(self, position: PositionView, now_ns: int) -> None: ...

    def on_event(self, event, now_ns: int) -> None: ...


class BaseStrategy:
    """No-op hooks; subclasses override ``on_rfq`` and whatever else they need."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.config: EngineConfig | None = None
        self.agent = ""

    def on_start(self, config: EngineConfig, agent: str) -> None:
        self.config = config
        self.agent = agent

    def on_rfq(self, rfq: RfqView, oracle_price_e8: int, now_ns: int) -> QuoteIntent | None:
        return None

    def on_fill(self, position: PositionView, now_ns: int) -> None:
        pass

    def on_event(self, event, now_ns: int) -> None:
        pass
