"""Reference market makers: a pure quoting strategy and the agent that runs it over the SDK.

The quoting decision is ``InventoryMaker.on_rfq`` — a pure function of the RFQ, the oracle
price, the maker's inventory and its parameters (plus a seeded jitter) — and the class
implements ``protocol.strategy.Strategy``, so a backtest runs the very same maker:

    agentperp replay backtest data/journal --strategy agents.makers:ConservativeMaker

How it prices. The taker pays the maker the funding rate (per 8h), so the rate is the
maker's pay for carrying the other side of the trade:

    rate = base_rate
         + inventory_rate × (|exposure after| − |exposure before|) / risk_limit
         + trend_rate × price trend in the direction that hurts the maker
         ± jitter

``exposure`` is the maker's net notional in the RFQ's market (long positive, in micro-USDC);
a trade that takes it beyond ``risk_limit`` is not quoted, one that reduces it is quoted
cheaper (possibly below zero: the maker then pays to get flat). The price trend is
``(price − EMA) / EMA`` of the oracle: a rising price makes a maker that must go short ask
more. Collateral is ``size / leverage`` (never below ``size / the market's max leverage``).
A quote above the RFQ's max rate is not sent.
"""

from __future__ import annotations

import logging
import random

from agents import sdk
from engine import commands as cmd
from engine import events as ev
from engine.markets import EngineConfig
from engine.units import RATE_E9_MAX
from engine.views import PositionView, RfqView
from protocol.strategy import BaseStrategy, QuoteIntent

log = logging.getLogger("agentperp.agents.maker")


class InventoryMaker(BaseStrategy):
    """Quote from a base rate, the inventory against a risk limit, and the price trend.

    ``base_rate_e9``: rate asked for taking on risk from flat; ``inventory_rate_e9``: extra
    rate for adding a whole ``risk_limit_e6`` of exposure (a discount for removing it);
    ``trend_rate_e9``: extra rate per unit of relative price trend against the maker;
    ``jitter_e9``: uniform ± noise (seeded); ``leverage``: the maker's collateral is
    size / leverage; ``valid_for_ms``: quote lifetime (0: the market's default);
    ``ema_alpha``: weight of each new price in the trend's EMA.
    """

    def __init__(self, seed: int = 0, *, base_rate_e9: int = 1_000_000, inventory_rate_e9: int = 4_000_000,
                 trend_rate_e9: int = 200_000_000, jitter_e9: int = 100_000, risk_limit_e6: int = 200_000_000_000,
                 leverage: int = 5, valid_for_ms: int = 0, ema_alpha: float = 0.05):
        super().__init__(seed)
        self.rng = random.Random(seed)
        self.base_rate_e9 = base_rate_e9
        self.inventory_rate_e9 = inventory_rate_e9
        self.trend_rate_e9 = trend_rate_e9
        self.jitter_e9 = jitter_e9
        self.risk_limit_e6 = risk_limit_e6
        self.leverage = leverage
        self.valid_for_ms = valid_for_ms
        self.ema_alpha = ema_alpha
        self.exposure_e6: dict[int, int] = {}  # market -> net notional (long +)
        self.ema_e8: dict[int, float] = {}  # market -> EMA of the oracle price
        self.mine: dict[int, tuple[int, int, int]] = {}  # position_id -> (market, sign, open size)

    # -- the decision ------------------------------------------------------------------------------

    def on_rfq(self, rfq: RfqView, oracle_price_e8: int, now_ns: int) -> QuoteIntent | None:
        if oracle_price_e8 <= 0 or rfq.trader == self.agent:
            return None
        self._observe_price(rfq.market, oracle_price_e8)
        maker_sign = -1 if rfq.side == "long" else 1  # the maker takes the other side
        before = self.exposure_e6.get(rfq.market, 0)
        after = before + maker_sign * rfq.size_e6
        if abs(after) > self.risk_limit_e6:
            return None
        inventory = self.inventory_rate_e9 * (abs(after) - abs(before)) / self.risk_limit_e6
        ema = self.ema_e8[rfq.market]
        trend = (oracle_price_e8 - ema) / ema  # > 0: the price has been rising
        against_maker = -maker_sign * trend  # rising hurts a short maker, falling a long one
        jitter = self.rng.randint(-self.jitter_e9, self.jitter_e9) if self.jitter_e9 else 0
        rate_e9 = round(self.base_rate_e9 + inventory + self.trend_rate_e9 * against_maker) + jitter
        rate_e9 = max(-RATE_E9_MAX, min(RATE_E9_MAX, rate_e9))
        if rate_e9 > rfq.max_funding_rate_e9:
            return None
        return QuoteIntent(rate_e9, self.collateral_e6(rfq), self.valid_for_ms)

    def collateral_e6(self, rfq: RfqView) -> int:
        """size / leverage, at least size / the market's max leverage (rounded up)."""
        leverage_max = self.config.markets[rfq.market].leverage_max if self.config else self.leverage
        leverage = max(1, min(self.leverage, leverage_max))
        return -(-rfq.size_e6 // leverage)

    def quote_for(self, rfq: RfqView, price_e8: int, now_ns: int) -> QuoteIntent | None:
        """The same decision as ``on_rfq``."""
        return self.on_rfq(rfq, price_e8, now_ns)

    # -- what it learns from the venue -------------------------------------------------------------

    def on_fill(self, position: PositionView, now_ns: int) -> None:
        sign = 1 if position.long_agent == self.agent else -1
        self.mine[position.position_id] = (position.market, sign, position.size_e6)
        self.exposure_e6[position.market] = self.exposure_e6.get(position.market, 0) + sign * position.size_e6

    def on_event(self, event, now_ns: int) -> None:
        kind = type(event)
        if kind is ev.OracleUpdated:
            self._observe_price(event.market, event.price_e8)
        elif kind is ev.PositionClosed and event.position_id in self.mine:
            self._reduce(event.position_id, event.closed_size_e6)
        elif kind is ev.PositionLiquidated and event.position_id in self.mine:
            self._reduce(event.position_id, self.mine[event.position_id][2])

    def _reduce(self, position_id: int, size_e6: int) -> None:
        market, sign, open_e6 = self.mine[position_id]
        self.exposure_e6[market] -= sign * size_e6
        if open_e6 - size_e6 <= 0:
            del self.mine[position_id]
        else:
            self.mine[position_id] = (market, sign, open_e6 - size_e6)

    def _observe_price(self, market: int, price_e8: int) -> None:
        ema = self.ema_e8.get(market)
        self.ema_e8[market] = float(price_e8) if ema is None else ema + self.ema_alpha * (price_e8 - ema)


class ConservativeMaker(InventoryMaker):
    """Asks more, quotes less: a small risk limit, steep inventory pricing, 2× collateral
    leverage (collateral = half the size), short-lived quotes."""

    def __init__(self, seed: int = 0, **overrides):
        params = dict(base_rate_e9=3_000_000, inventory_rate_e9=10_000_000, trend_rate_e9=500_000_000,
                      jitter_e9=200_000, risk_limit_e6=50_000_000_000, leverage=2, valid_for_ms=5_000)
        super().__init__(seed, **{**params, **overrides})


class AggressiveMaker(InventoryMaker):
    """Tight rates and a large book: a big risk limit, gentle inventory pricing, the market's
    max leverage (the least collateral the venue allows), long-lived quotes."""

    def __init__(self, seed: int = 0, **overrides):
        params = dict(base_rate_e9=500_000, inventory_rate_e9=2_000_000, trend_rate_e9=100_000_000,
                      jitter_e9=100_000, risk_limit_e6=500_000_000_000, leverage=20, valid_for_ms=10_000)
        super().__init__(seed, **{**params, **overrides})


# -- the live agent -----------------------------------------------------------------------------------

def rfq_view(event: ev.RfqOpened) -> RfqView:
    """The RFQ of an ``RfqOpened`` event as the state would show it (``engine.views``)."""
    return RfqView(event.rfq_id, event.trader, event.market, event.side, event.size_e6, event.leverage,
                   event.max_funding_rate_e9, cmd.DURATION_NS[event.duration], event.expires_ns,
                   event.margin_e6 + event.fee_e6, event.auto_accept, event.target_rate_e9)


def position_view(event: ev.PositionOpened) -> PositionView:
    """A just-opened position as the state would show it (``engine.views``)."""
    return PositionView(event.position_id, event.market, event.long_agent, event.short_agent, event.taker_side,
                        event.size_e6, event.size_e6, event.entry_price_e8, event.funding_rate_e9,
                        event.margin_long_e6, event.margin_short_e6, event.ts_ns, event.expires_ns, 0)


class MakerAgent:
    """Runs a ``Strategy`` live: every RFQ of the venue is offered to ``strategy.on_rfq``, and a
    quote it returns is sent at once (firm; the venue holds the collateral). Quotes are sent
    without waiting for their answer, so the maker keeps up with a busy RFQ stream. Prices
    start from the Welcome's last prices and follow the live ``oracle`` stream."""

    def __init__(self, client: sdk.Client, strategy: InventoryMaker, config: EngineConfig | None = None):
        self.client = client
        self.strategy = strategy
        self.config = config
        self.stats = {"rfqs": 0, "quotes": 0, "fills": 0, "rejected": 0}
        self.rejections: dict[str, int] = {}

    async def run(self) -> None:
        client, strategy = self.client, self.strategy
        me = client.agent
        strategy.on_start(self.config or client.engine_config, me)
        # The Welcome's prices, then every update after them: no gap between the two.
        prices = {p.market: p.price_e8 for p in client.welcome.prices}
        # A strategy may ask for more public streams (DynamicPricingMaker: fills, closes, liquidations).
        streams = ["rfqs", "oracle", "account", *getattr(strategy, "streams", ())]
        subscription = await client.subscribe(streams, from_seq=client.welcome.last_seq + 1)
        take_cancels = getattr(strategy, "take_cancels", None)
        try:
            async for event in subscription:
                kind = type(event)
                if kind is ev.OracleUpdated:
                    prices[event.market] = event.price_e8
                elif kind is ev.RfqOpened and event.trader != me:
                    self.stats["rfqs"] += 1
                    intent = strategy.on_rfq(rfq_view(event), prices.get(event.market, 0), event.ts_ns)
                    if intent is not None:
                        self._quote(event.rfq_id, intent)
                strategy.on_event(event, event.ts_ns)
                if kind is ev.PositionOpened and me in (event.long_agent, event.short_agent):
                    self.stats["fills"] += 1
                    strategy.on_fill(position_view(event), event.ts_ns)
                if take_cancels is not None:  # a strategy that may pull its quotes (SwarmMaker's emergency stop)
                    for quote_id in take_cancels():
                        self._cancel(quote_id)
        finally:
            await client.disconnect()

    def _quote(self, rfq_id: int, intent: QuoteIntent) -> None:
        self.stats["quotes"] += 1
        future = self.client.send(cmd.SubmitQuote(self.client.agent, rfq_id, intent.funding_rate_e9,
                                                  intent.collateral_e6, intent.valid_for_ms))
        future.add_done_callback(self._answered)

    def _cancel(self, quote_id: int) -> None:
        self.stats["cancels"] = self.stats.get("cancels", 0) + 1
        self.client.send(cmd.CancelQuote(self.client.agent, quote_id)).add_done_callback(self._answered)

    def _answered(self, future) -> None:
        if future.cancelled() or future.exception() is not None:
            return
        result = future.result()
        if type(result) is sdk.Rejection:
            self.stats["rejected"] += 1
            self.rejections[result.code] = self.rejections.get(result.code, 0) + 1
