"""Health of one exchange: connected / degraded / down, with a circuit breaker.

Transitions (an unknown one raises):

    state       on success (fast)   on success (slow)   on failure (n < DOWN_AFTER)   on failure (n ≥ DOWN_AFTER)
    connected   connected           degraded            degraded                      down
    degraded    connected           degraded            degraded                      down
    down        connected (probe)   degraded (probe)    down                          down

While down the breaker is open: ``usable(now)`` is false until ``open_until_s``, then one
probe is let through (half-open); its outcome closes or re-opens the breaker, the cooldown
doubling up to ``COOLDOWN_S_MAX``. An authentication failure opens it with ``reason='auth'``
and no probe: a wrong key does not heal by retrying.
"""

from __future__ import annotations

from dataclasses import dataclass

CONNECTED, DEGRADED, DOWN = "connected", "degraded", "down"
DOWN_AFTER_FAILURES = 3
SLOW_MS = 1_000.0  # a success slower than this is degraded
COOLDOWN_S = 1.0
COOLDOWN_S_MAX = 60.0

_ON_SUCCESS = {CONNECTED: (CONNECTED, DEGRADED), DEGRADED: (CONNECTED, DEGRADED), DOWN: (CONNECTED, DEGRADED)}


@dataclass
class Health:
    name: str
    state: str = CONNECTED
    failures: int = 0  # consecutive
    open_until_s: float = 0.0
    cooldown_s: float = COOLDOWN_S
    reason: str = ""
    latency_ms: float = 0.0  # of the last success
    successes_total: int = 0
    failures_total: int = 0

    def usable(self, now_s: float) -> bool:
        """May a request go out now (closed breaker, or the half-open probe)?"""
        if self.state != DOWN:
            return True
        return self.reason != "auth" and now_s >= self.open_until_s

    def success(self, latency_ms: float) -> None:
        fast, slow = _ON_SUCCESS[self.state]
        self.state = fast if latency_ms <= SLOW_MS else slow
        self.failures, self.reason, self.latency_ms = 0, "", latency_ms
        self.cooldown_s = COOLDOWN_S
        self.successes_total += 1

    def failure(self, now_s: float, reason: str) -> None:
        if self.state not in (CONNECTED, DEGRADED, DOWN):
            raise AssertionError(f"unknown health state {self.state!r}")
        self.failures += 1
        self.failures_total += 1
        self.reason = reason
        if self.state == DOWN:  # a failed probe: stay open, longer
            self.cooldown_s = min(self.cooldown_s * 2, COOLDOWN_S_MAX)
            self.open_until_s = now_s + self.cooldown_s
        elif reason == "auth" or self.failures >= DOWN_AFTER_FAILURES:
            self.state = DOWN
            self.open_until_s = now_s + self.cooldown_s
        else:
            self.state = DEGRADED
