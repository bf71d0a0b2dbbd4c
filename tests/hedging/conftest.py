"""A Binance simulator on loopback and real ccxt clients pointed at it."""

from __future__ import annotations

import time

import pytest

from adapters.hedging.exchanges import Credentials, make_client
from adapters.hedging.sim.binance import BinanceSim
from adapters.hedging.sim.server import start


class Clock:
    """The simulator's clock: real time plus an offset, or frozen at an instant (``frozen_s``).

    Tests move it, never sleep. A test at a bound freezes it: the server's "now" is then a
    number the test chose, not a clock read racing the request.
    """

    def __init__(self) -> None:
        self._time = time.time
        self.offset_s = 0.0
        self.frozen_s: float | None = None

    def __call__(self) -> float:
        return (self._time() if self.frozen_s is None else self.frozen_s) + self.offset_s


@pytest.fixture
async def binance():
    """``(sim, base_url)``: a fresh simulator with account ``k1``/``s1``."""
    clock = Clock()
    sim = BinanceSim(seed=7, clock=clock)
    sim.clock_control = clock
    sim.add_account("k1", "s1")
    runner, port = await start(sim.app())
    yield sim, f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture
async def client(binance):
    sim, url = binance
    c = make_client("binanceusdm", url, Credentials("k1", "s1"))
    yield c
    await c.close()
