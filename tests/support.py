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


def kill_after_status_lines(venue, lines: int, marker: str) -> None:
    """SIGKILL the ``agentperp run`` subprocess ``venue`` (stdout piped, text) once it printed
    ``lines`` status lines holding ``marker``: the venue's own status lines pace the kill, no
    timer in the test."""
    import signal

    try:
        seen = 0
        for line in venue.stdout:
            seen += line.startswith("seq ") and marker in line
            if seen == lines:
                break
        assert seen == lines, "the venue stopped early"
        venue.send_signal(signal.SIGKILL)
    finally:
        venue.wait(30)
