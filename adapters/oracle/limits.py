"""The oracle clients' bounds on retrying: a capped exponential backoff with jitter and a
sliding-window request budget (Hermes' public limit: 30 requests per 10 s per IP, then 60 s
of 429 — we stay under it rather than find it)."""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable


class Backoff:
    """Delays ``base_s * 2**attempt`` capped at ``max_s``, each drawn uniformly from
    ``[delay * (1 - jitter), delay]`` so that many clients do not reconnect in step."""

    def __init__(self, base_s: float, max_s: float, jitter: float = 0.5, rng: random.Random | None = None):
        assert 0 < base_s <= max_s, "backoff: 0 < base <= max"
        assert 0 <= jitter <= 1, "backoff: jitter is a fraction"
        self.base_s = base_s
        self.max_s = max_s
        self.jitter = jitter
        self.rng = rng or random.Random()
        self.attempt = 0

    def next_s(self) -> float:
        delay = min(self.max_s, self.base_s * 2 ** min(self.attempt, 32))
        self.attempt += 1
        return delay * (1 - self.jitter * self.rng.random())

    def reset(self) -> None:
        self.attempt = 0


class RequestBudget:
    """At most ``requests`` per ``window_s`` seconds (sliding window)."""

    def __init__(self, requests: int, window_s: float, clock: Callable[[], float] = time.monotonic):
        assert requests >= 1 and window_s > 0, "request budget: at least one request per positive window"
        self.requests = requests
        self.window_s = window_s
        self.clock = clock
        self._sent: deque[float] = deque()

    def wait_s(self) -> float:
        """How long until one more request fits (0: now)."""
        now = self.clock()
        while self._sent and now - self._sent[0] >= self.window_s:
            self._sent.popleft()
        if len(self._sent) < self.requests:
            return 0.0
        return self._sent[0] + self.window_s - now

    def room(self) -> int:
        """How many more requests fit now."""
        self.wait_s()  # forgets what left the window
        return self.requests - len(self._sent)

    def take(self) -> None:
        self._sent.append(self.clock())
        while len(self._sent) > self.requests:  # bounded whatever the caller does
            self._sent.popleft()
