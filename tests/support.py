"""What the venue-level tests share: an injectable clock and deterministic agent keys."""

from __future__ import annotations

from solders.keypair import Keypair

T0_NS = 1_767_250_800 * 10**9  # 2026-01-01T07:00:00Z: one hour before the 08:00 funding boundary
NS_PER_MS = 1_000_000


class FakeClock:
    """The venue's clock in tests: it moves only when the test moves it."""

    def __init__(self, now_ns: int = T0_NS):
        self.now_ns = now_ns

    def __call__(self) -> int:
        return self.now_ns

    def advance_ms(self, ms: int) -> None:
        self.now_ns += ms * NS_PER_MS


def keypair(n: int) -> Keypair:
    return Keypair.from_seed(bytes([n]) * 32)


def agent_of(key: Keypair) -> str:
    return str(key.pubkey())
