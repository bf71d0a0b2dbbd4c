"""DynamicPricingMaker: the rate from the market's balance, its realized volatility and how
sure the maker is of both.

    rate = base_rate
         + balance_rate × imbalance × direction        (imbalance: agents.risk.OpenInterest)
         + volatility_rate × min(volatility / volatility_ref, 4)
         + uncertainty_rate × (1 − confidence)
         ± jitter

``imbalance`` in [-1, 1] is the venue's open interest by taker side, (long − short) / total —
a public view built from the ``fills``/``closes``/``liquidations`` streams. ``direction`` is +1
when the RFQ's side is the crowded one (a long RFQ while takers are net long: the makers are
already carrying that risk), −1 when it rebalances (a discount). ``confidence`` in [0, 1] is
the product of three terms: enough price samples for the volatility
(``samples / samples_min``), enough open interest to trust the balance
(``total / oi_ref_e6``), and the oracle's own confidence (1 at a conf of 0, 0 at
``conf_bps_max``). Below ``confidence_min`` it does not quote. Collateral: size / leverage.
"""

from __future__ import annotations

import random
from typing import NamedTuple

from agents.features import MarketFeatures, PriceFeatures
from agents.risk import OpenInterest
from engine import events as ev
from engine.units import RATE_E9_MAX
from engine.views import RfqView
from protocol.strategy import BaseStrategy, QuoteIntent


class Pricing(NamedTuple):
    rate_e9: int
    confidence: float
    balance_e9: int
    volatility_e9: int
    uncertainty_e9: int


def confidence_of(samples: int, open_interest_e6: int, conf_bps: float, *, samples_min: int, oi_ref_e6: int,
                  conf_bps_max: float) -> float:
    """The maker's confidence in its inputs, 0..1 (module docstring)."""
    prices = min(1.0, samples / samples_min) if samples_min > 0 else 1.0
    balance = min(1.0, open_interest_e6 / oi_ref_e6) if oi_ref_e6 > 0 else 1.0
    oracle = max(0.0, 1.0 - conf_bps / conf_bps_max) if conf_bps_max > 0 else 1.0
    return prices * (0.5 + 0.5 * balance) * oracle


def dynamic_rate(side: str, imbalance: float, f: MarketFeatures, confidence: float, *, base_rate_e9: int,
                 balance_rate_e9: int, volatility_rate_e9: int, volatility_ref: float,
                 uncertainty_rate_e9: int) -> Pricing:
    """The rate for an RFQ on ``side`` (the trader's) — pure, before jitter."""
    direction = 1 if side == "long" else -1
    balance = round(balance_rate_e9 * imbalance * direction)
    volatility = round(volatility_rate_e9 * min(f.volatility / volatility_ref, 4.0)) if volatility_ref > 0 else 0
    uncertainty = round(uncertainty_rate_e9 * (1.0 - confidence))
    return Pricing(base_rate_e9 + balance + volatility + uncertainty, confidence, balance, volatility, uncertainty)


class DynamicPricingMaker(BaseStrategy):
    streams = ("fills", "closes", "liquidations")  # live: the public streams of the open interest

    def __init__(self, seed: int = 0, *, base_rate_e9: int = 800_000, balance_rate_e9: int = 3_000_000,
                 volatility_rate_e9: int = 1_000_000, volatility_ref: float = 0.002,
                 uncertainty_rate_e9: int = 2_000_000, confidence_min: float = 0.2, samples_min: int = 16,
                 oi_ref_e6: int = 100_000_000_000, conf_bps_max: float = 200.0, jitter_e9: int = 50_000,
                 leverage: int = 5, valid_for_ms: int = 0, window: int = 64) -> None:
        super().__init__(seed)
        self.rng = random.Random(seed)
        self.pricing = dict(base_rate_e9=base_rate_e9, balance_rate_e9=balance_rate_e9,
                            volatility_rate_e9=volatility_rate_e9, volatility_ref=volatility_ref,
                            uncertainty_rate_e9=uncertainty_rate_e9)
        self.confidence = dict(samples_min=samples_min, oi_ref_e6=oi_ref_e6, conf_bps_max=conf_bps_max)
        self.confidence_min, self.jitter_e9 = confidence_min, jitter_e9
        self.leverage, self.valid_for_ms = leverage, valid_for_ms
        self.prices = PriceFeatures(window)
        self.open_interest = OpenInterest()
        self.conf_bps: dict[int, float] = {}
        self.last: Pricing | None = None  # the last pricing, for explanation

    def price(self, rfq: RfqView, oracle_price_e8: int) -> Pricing:
        f = self.prices.features(rfq.market)
        conf_bps = self.conf_bps.get(rfq.market, 0.0)
        confidence = confidence_of(f.samples, self.open_interest.total_e6(rfq.market), conf_bps, **self.confidence)
        return dynamic_rate(rfq.side, self.open_interest.imbalance(rfq.market), f, confidence, **self.pricing)

    def on_rfq(self, rfq: RfqView, oracle_price_e8: int, now_ns: int) -> QuoteIntent | None:
        if oracle_price_e8 <= 0 or rfq.trader == self.agent:
            return None
        pricing = self.last = self.price(rfq, oracle_price_e8)
        if pricing.confidence < self.confidence_min:
            return None
        jitter = self.rng.randint(-self.jitter_e9, self.jitter_e9) if self.jitter_e9 else 0
        rate_e9 = max(-RATE_E9_MAX, min(RATE_E9_MAX, pricing.rate_e9 + jitter))
        if rate_e9 > rfq.max_funding_rate_e9:
            return None
        leverage_max = self.config.markets[rfq.market].leverage_max if self.config else self.leverage
        return QuoteIntent(rate_e9, -(-rfq.size_e6 // max(1, min(self.leverage, leverage_max))), self.valid_for_ms)

    def on_event(self, event, now_ns: int) -> None:
        self.open_interest.apply(event)
        if type(event) is ev.OracleUpdated:
            self.prices.observe(event.market, event.price_e8)
            self.conf_bps[event.market] = event.conf_e8 * 10_000 / event.price_e8 if event.price_e8 > 0 else 0.0
