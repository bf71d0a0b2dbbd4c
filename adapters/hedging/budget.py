"""One request-weight budget per exchange, shared by every maker's client (the limit is per IP).

``acquire(weight)`` waits until the weight fits in the current window and no back-off is in
force. The exchange's own count (``X-MBX-USED-WEIGHT-1M``) corrects ours after every answer;
past ``SLOW_DOWN_FRACTION`` of the limit we wait for the next window rather than meet a 429.
A 429 (ccxt ``DDoSProtection``) stops everyone until its ``Retry-After``: the ban (418) comes
to those who keep sending.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

SLOW_DOWN_FRACTION = 0.9
RETRY_AFTER_S_MAX = 300.0  # a longer Retry-After is a ban in disguise: fail instead of waiting
WAITERS_MAX = 1_000  # requests queued on one budget


class BudgetExhausted(Exception):
    """The exchange asked for a wait longer than ``RETRY_AFTER_S_MAX``, or too many waiters."""


@dataclass
class RateBudget:
    weight_per_window: int = 2400
    window_s: float = 60.0
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], object] = asyncio.sleep
    used: int = 0
    window_start_s: float = 0.0
    paused_until_s: float = 0.0
    waiters: int = 0
    backoffs: int = 0  # 429s seen
    waits: int = 0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def _roll(self, now_s: float) -> None:
        start = math.floor(now_s / self.window_s) * self.window_s
        if start != self.window_start_s:
            self.window_start_s, self.used = start, 0

    async def acquire(self, weight: int) -> None:
        if self.waiters >= WAITERS_MAX:
            raise BudgetExhausted(f"{self.waiters} requests already waiting on the rate budget")
        self.waiters += 1
        try:
            async with self._lock:  # one at a time through the gate: the order of arrival is kept
                while True:
                    now = self.clock()
                    self._roll(now)
                    if now < self.paused_until_s:
                        wait = self.paused_until_s - now
                    elif self.used + weight > self.weight_per_window * SLOW_DOWN_FRACTION:
                        wait = self.window_start_s + self.window_s - now
                    else:
                        self.used += weight
                        return
                    self.waits += 1
                    await self.sleep(max(wait, 0.001))
        finally:
            self.waiters -= 1

    def observe(self, used_weight: int | None) -> None:
        """Take the exchange's own count of this window's weight."""
        if used_weight is not None:
            self._roll(self.clock())
            self.used = max(self.used, used_weight)

    def back_off(self, retry_after_s: float) -> None:
        """A 429 arrived: nobody sends until ``retry_after_s`` from now."""
        if retry_after_s > RETRY_AFTER_S_MAX:
            raise BudgetExhausted(f"Retry-After {retry_after_s} s")
        self.backoffs += 1
        self.paused_until_s = max(self.paused_until_s, self.clock() + retry_after_s)
