"""Request-weight accounting as Binance does it: 429 over the limit, 418 bans for not backing off.

Per client IP, weights are summed over a fixed window (``window_s``, 60 s on the real
exchange: ``X-MBX-USED-WEIGHT-1M``); orders are counted the same way (``ORDERS``). A request
that would pass a limit gets 429 with ``Retry-After`` (seconds to the window's end). A client
that keeps sending while told to wait is banned: its ``ban_after_violations``-th request
inside a Retry-After period gets 418 and every request until ``banned_until`` does too.
The real exchange scales bans from 2 minutes to 3 days for repeat offenders; so do we
(doubling, capped at ``ban_s_max``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

CLIENTS_MAX = 10_000  # distinct IPs tracked; beyond it the oldest window is dropped


@dataclass
class _Client:
    window_start_s: float = 0.0
    weight: int = 0
    orders: int = 0
    retry_until_s: float = 0.0
    violations: int = 0
    banned_until_s: float = 0.0
    bans: int = 0


@dataclass
class Verdict:
    status: int  # 200, 429 or 418
    retry_after_s: int = 0
    used_weight: int = 0
    order_count: int = 0
    banned_until_ms: int = 0


@dataclass
class RateLimits:
    weight_per_window: int = 2400
    orders_per_window: int = 1200
    window_s: float = 60.0
    ban_after_violations: int = 5
    ban_s: float = 120.0
    ban_s_max: float = 3 * 86400.0
    clients: dict[str, _Client] = field(default_factory=dict)
    counts: dict[int, int] = field(default_factory=lambda: {200: 0, 429: 0, 418: 0})

    def check(self, ip: str, weight: int, is_order: bool, now_s: float) -> Verdict:
        """Count one request and say whether it may run."""
        client = self.clients.get(ip)
        if client is None:
            if len(self.clients) >= CLIENTS_MAX:
                self.clients.pop(next(iter(self.clients)))
            client = self.clients[ip] = _Client(window_start_s=now_s)
        window_start = math.floor(now_s / self.window_s) * self.window_s
        if window_start != client.window_start_s:
            client.window_start_s, client.weight, client.orders = window_start, 0, 0
        verdict = self._decide(client, weight, is_order, now_s)
        self.counts[verdict.status] += 1
        return verdict

    def _decide(self, client: _Client, weight: int, is_order: bool, now_s: float) -> Verdict:
        if now_s < client.banned_until_s:
            return Verdict(418, math.ceil(client.banned_until_s - now_s), client.weight, client.orders,
                           int(client.banned_until_s * 1000))
        if now_s < client.retry_until_s:
            client.violations += 1
            if client.violations >= self.ban_after_violations:
                ban_s = min(self.ban_s * (2 ** client.bans), self.ban_s_max)
                client.bans += 1
                client.banned_until_s = now_s + ban_s
                client.violations = 0
                return Verdict(418, math.ceil(ban_s), client.weight, client.orders, int(client.banned_until_s * 1000))
            return Verdict(429, math.ceil(client.retry_until_s - now_s), client.weight, client.orders)
        over_weight = client.weight + weight > self.weight_per_window
        over_orders = is_order and client.orders + 1 > self.orders_per_window
        if over_weight or over_orders:
            client.retry_until_s = client.window_start_s + self.window_s
            client.violations = 0
            return Verdict(429, max(1, math.ceil(client.retry_until_s - now_s)), client.weight, client.orders)
        client.weight += weight
        client.orders += int(is_order)
        return Verdict(200, 0, client.weight, client.orders)
