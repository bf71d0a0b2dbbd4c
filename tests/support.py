"""What the tests share: an injectable clock, deterministic agent keys, an engine with positions."""

from __future__ import annotations

from solders.keypair import Keypair

from engine import commands as cmd
from engine.core import execute
from engine.markets import default_config
from engine.state import State

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


def engine_with_positions(start_ns: int, sizes_and_leverages: list[tuple[int, int]], rate_e9: int):
    """A fresh engine where alice went long against bob's quotes on market 0 at 100 000 USDC,
    one position per ``(size in USDC, leverage)``; and ``run(command, at_ns=start_ns)``,
    which executes a command that must be accepted and returns its events."""
    state = State(default_config())
    cmd_ids = iter(range(1, 1 << 62))

    def run(command, at_ns: int = start_ns) -> list:
        outcome = execute(state, command, at_ns, next(cmd_ids))
        assert type(outcome) is list, outcome
        return outcome

    for agent in ("alice", "bob"):
        run(cmd.Deposit(agent, 10_000 * 1_000_000, f"seed-{agent}"))
    run(cmd.OracleUpdate(0, 100_000 * 10**8, 10**8, start_ns, "test"))
    for size_usdc, leverage in sizes_and_leverages:
        rfq_id = run(cmd.RequestQuote("alice", 0, "long", size_usdc * 1_000_000, leverage, 10_000_000))[0].rfq_id
        run(cmd.SubmitQuote("bob", rfq_id, rate_e9, size_usdc * 1_000_000))
        run(cmd.AcceptQuote("alice", rfq_id))
    return state, run
