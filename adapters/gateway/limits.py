"""Request rate limits: one token bucket per agent, shared by every edge (TCP connections,
HTTP requests) so ``gateway.requests_per_s`` is the agent's budget however it connects.

On the process's monotonic clock: a limit on load, not part of the venue's history.
"""

from __future__ import annotations

import time
from collections import OrderedDict

# Agents whose buckets are kept at once; beyond it the least recently seen agent's bucket is
# forgotten (O(1): an OrderedDict moved-to-end on use, popped from the front). A forgotten
# agent starts again with a full bucket: the bound trades a little leniency for memory.
BUCKETS_MAX = 100_000


class TokenBucket:
    """``rate_per_s`` tokens a second up to ``burst``; one request takes one token."""

    __slots__ = ("rate_per_s", "burst", "tokens", "stamp_s")

    def __init__(self, rate_per_s: float, burst: int):
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.tokens = float(burst)
        self.stamp_s = time.monotonic()

    def take(self, now_s: float) -> float:
        """0 if a token was taken; else the seconds until one is available."""
        tokens = self.tokens + (now_s - self.stamp_s) * self.rate_per_s
        if tokens > self.burst:
            tokens = self.burst
        self.stamp_s = now_s
        if tokens >= 1.0:
            self.tokens = tokens - 1.0
            return 0.0
        self.tokens = tokens
        return (1.0 - tokens) / self.rate_per_s if self.rate_per_s > 0 else float("inf")


class RateLimits:
    """The buckets of every agent (``Venue.rate_limits``)."""

    def __init__(self, rate_per_s: float, burst: int, capacity: int = BUCKETS_MAX):
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.capacity = capacity
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def bucket_for(self, agent: str) -> TokenBucket:
        bucket = self._buckets.get(agent)
        if bucket is None:
            bucket = self._buckets[agent] = TokenBucket(self.rate_per_s, self.burst)
            if len(self._buckets) > self.capacity:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(agent)
        return bucket
