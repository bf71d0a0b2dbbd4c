"""The oracle tests' rig: a Hermes server on loopback and a sink that lets a test wait for
the N-th price (an event, never a sleep)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from adapters.oracle.hermes_sim import HermesSim
from adapters.oracle.pyth_client import PythSettings
from venue.config import PYTH_FEED_IDS

BTC, ETH, SOL = (PYTH_FEED_IDS[s] for s in ("BTC-PERP", "ETH-PERP", "SOL-PERP"))
START = {BTC: (6_500_000_000_000, 2_000_000_000, -8), ETH: (320_000_000_000, 100_000_000, -8),
         SOL: (15_000_000_000, 5_000_000, -8)}


class Collect:
    """A ``Sink`` that keeps what it is given and wakes waiters."""

    def __init__(self):
        self.updates = []
        self.drops = []
        self.notes = []
        self._changed = asyncio.Event()

    def update(self, update):
        self.updates.append(update)
        self._changed.set()

    def drop(self, reason, detail):
        self.drops.append((reason, detail))
        self._changed.set()

    def note(self, what, detail=""):
        self.notes.append(what)
        self._changed.set()

    async def until(self, predicate, timeout_s: float = 10.0):
        async with asyncio.timeout(timeout_s):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()


@contextlib.asynccontextmanager
async def running(source, sink):
    """``source`` runs into ``sink`` for the block (then cancelled); yields its task."""
    task = asyncio.create_task(source.run(sink))
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.fixture
async def hermes():
    sim = HermesSim(START)
    await sim.start()
    yield sim
    await sim.stop()


def settings(url: str, **kw) -> PythSettings:
    params = dict(base_url=url, feed_ids={0: BTC, 1: ETH, 2: SOL}, backoff_base_s=0.01, backoff_max_s=0.05,
                  rate_limited_s=0.02, stream_stale_s=5.0, poll_interval_s=0.01)
    return PythSettings(**{**params, **kw})
