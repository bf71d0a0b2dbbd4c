"""Exponential back-off for transient chain trouble (``backend.TransientError``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from adapters.solana.backend import TransientError

log = logging.getLogger("agentperp.settlement")
T = TypeVar("T")


class RetriesExhausted(Exception):
    """A transient error outlived the back-off; the projection stops at its checkpoint."""


@dataclass(frozen=True)
class Backoff:
    initial_s: float = 0.25
    factor: float = 2.0
    max_s: float = 15.0
    attempts_max: int = 10  # ~1 min of waiting in all with the defaults

    def delays(self):
        delay = self.initial_s
        for _ in range(self.attempts_max - 1):
            yield delay
            delay = min(delay * self.factor, self.max_s)


async def with_backoff(call: Callable[[], Awaitable[T]], backoff: Backoff, what: str,
                       sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> T:
    """Run ``call``; on TransientError wait and try again, up to ``backoff.attempts_max``."""
    delays = backoff.delays()
    while True:
        try:
            return await call()
        except TransientError as error:
            delay = next(delays, None)
            if delay is None:
                raise RetriesExhausted(f"{what}: {error}") from error
            log.warning("%s: transient error, retrying in %.2fs: %s", what, delay, error)
            await sleep(delay)
