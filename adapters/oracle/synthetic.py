"""The synthetic oracle, the embedded default: a seeded random walk per market with
occasional jumps (so that liquidations happen), producing ``OracleUpdate`` commands that
enter through the sequencer like any other command — replay stays exact.

The walk is multiplicative in log space: each step moves the price by a normal draw of
``step_bps`` standard deviation, and with ``jump_probability`` by ``±jump_bps`` more.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable

import numpy as np

from engine import units as u
from engine.commands import OracleUpdate

SOURCE = "synthetic"
DEFAULT_START_PRICE_USD = 100.0


class SyntheticOracle:
    def __init__(self, symbols: list[str], *, seed: int, step_bps: float, jump_probability: float,
                 jump_bps: float, conf_bps: float, start_prices: dict[str, float]):
        self.rng = np.random.default_rng(seed)
        self.step = step_bps / u.BPS_SCALE
        self.jump_probability = jump_probability
        self.jump = jump_bps / u.BPS_SCALE
        self.conf = conf_bps / u.BPS_SCALE
        self.log_prices = np.log([start_prices.get(s, DEFAULT_START_PRICE_USD) for s in symbols])

    def step_updates(self, publish_ns: int) -> list[OracleUpdate]:
        """One step of every market's walk, as commands."""
        n = len(self.log_prices)
        moves = self.rng.normal(0.0, self.step, n)
        jumps = self.rng.random(n) < self.jump_probability
        signs = np.where(self.rng.random(n) < 0.5, -1.0, 1.0)
        self.log_prices += moves + jumps * signs * self.jump
        updates = []
        for market, log_price in enumerate(self.log_prices):
            price_e8 = int(round(math.exp(log_price) * u.PRICE_SCALE_E8))
            price_e8 = min(max(price_e8, 1), u.PRICE_E8_MAX)
            conf_e8 = max(1, int(price_e8 * self.conf))
            updates.append(OracleUpdate(market, price_e8, conf_e8, publish_ns, SOURCE))
        return updates

    async def run(self, submit: Callable[[object], Awaitable], interval_ms: int,
                  clock: Callable[[], int] = time.time_ns) -> None:
        """Submit one step per interval until cancelled."""
        while True:
            for update in self.step_updates(clock()):
                await submit(update)
            await asyncio.sleep(interval_ms / 1_000)


class SyntheticSource:
    """The synthetic walk as a price source of the feed (``adapters/oracle/feed.py``)."""

    name = SOURCE

    def __init__(self, oracle: SyntheticOracle, interval_ms: int, clock: Callable[[], int] = time.time_ns):
        self.oracle = oracle
        self.interval_ms = interval_ms
        self.clock = clock

    async def run(self, sink) -> None:
        async def emit(update: OracleUpdate) -> None:
            sink.update(update)

        await self.oracle.run(emit, self.interval_ms, self.clock)
