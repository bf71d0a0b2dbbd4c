"""Features of the oracle a strategy prices from: trend, realized volatility and the last move.

``PriceFeatures`` keeps the last ``window`` prices of each market (from ``OracleUpdated``)
and an EMA; ``features(market)`` is a ``MarketFeatures`` (pure data, what the decision
functions take, so tests build them by hand).

- ``trend``: ``(price − EMA) / EMA`` (> 0: rising);
- ``volatility``: standard deviation of the log returns between consecutive updates in the
  window (per update, not annualized);
- ``last_return``: the log return of the latest update (a shock shows here first);
- ``samples``: how many prices the window holds.
"""

from __future__ import annotations

import math
from collections import deque
from typing import NamedTuple


class MarketFeatures(NamedTuple):
    price_e8: int
    trend: float
    volatility: float
    last_return: float
    samples: int


NO_FEATURES = MarketFeatures(0, 0.0, 0.0, 0.0, 0)


class PriceFeatures:
    def __init__(self, window: int = 64, ema_alpha: float = 0.05) -> None:
        self.window = window
        self.ema_alpha = ema_alpha
        self.prices: dict[int, deque[int]] = {}
        self.ema: dict[int, float] = {}

    def observe(self, market: int, price_e8: int) -> None:
        if price_e8 <= 0:
            return
        prices = self.prices.setdefault(market, deque(maxlen=self.window))
        prices.append(price_e8)
        ema = self.ema.get(market)
        self.ema[market] = float(price_e8) if ema is None else ema + self.ema_alpha * (price_e8 - ema)

    def features(self, market: int) -> MarketFeatures:
        prices = self.prices.get(market)
        if not prices:
            return NO_FEATURES
        returns = [math.log(b / a) for a, b in zip(prices, list(prices)[1:])]
        if len(returns) >= 2:
            mean = sum(returns) / len(returns)
            volatility = math.sqrt(sum((r - mean) ** 2 for r in returns) / (len(returns) - 1))
        else:
            volatility = 0.0
        ema = self.ema[market]
        return MarketFeatures(prices[-1], (prices[-1] - ema) / ema, volatility, returns[-1] if returns else 0.0,
                              len(prices))
