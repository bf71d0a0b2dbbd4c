"""Journals for the projection tests: the README's worked example (hand-checked figures) and
small seeded sessions from ``replay.generate``; a projection pointed at a fresh database."""

from __future__ import annotations

from pathlib import Path

from engine import commands as cmd
from engine.core import execute
from engine.markets import default_config
from engine.state import State
from engine.units import NS_PER_S
from ledger.journal import FsyncPolicy, Journal
from ledger.records import encode_record

SYMBOLS = ["BTC-PERP", "ETH-PERP", "SOL-PERP"]
E6 = 1_000_000
E8 = 100_000_000
T0_NS = 1_767_250_800 * NS_PER_S  # 2026-01-01T07:00:00Z: one hour before the 08:00 funding boundary
BOUNDARY_NS = T0_NS + 3_600 * NS_PER_S
ALICE, BOB, CAROL, DAVE, KEEPER = "alice", "bob", "carol", "dave", "keeper"


class JournalWriter:
    """Execute commands against a fresh state and journal each as the sequencer would."""

    def __init__(self, data_dir: Path) -> None:
        self.state = State(default_config())
        self.journal = Journal.open(Path(data_dir) / "journal", fsync_policy=FsyncPolicy.NONE)
        self.cmd_id = 0
        self.outcomes: list = []

    def __call__(self, ts_ns: int, command) -> object:
        self.cmd_id += 1
        seq_before = self.state.last_seq
        outcome = execute(self.state, command, ts_ns, self.cmd_id)
        self.journal.append_batch([encode_record(self.cmd_id, ts_ns, command, outcome, seq_before)])
        self.outcomes.append(outcome)
        return outcome

    def close(self) -> None:
        self.journal.close()


def readme_example(data_dir: Path) -> JournalWriter:
    """The README's worked example, twice over:

    - alice (10x long of 100 at 100 000, taker) against bob (0.5% per 8h, 100 collateral),
      opened at 07:00; the 08:00 boundary settles one hour (0.0625 from alice to bob); alice
      closes at 102 000 just after it (PnL +2);
    - carol (the same long) against dave (the same quote), the price falls to 94 700 and the
      keeper liquidates carol (PnL -5.3, reward 0.235).
    """
    w = JournalWriter(data_dir)
    ts = T0_NS
    for agent in (ALICE, BOB, CAROL, DAVE):
        w(ts, cmd.Deposit(agent, 1_000 * E6, f"dep-{agent}"))
    w(ts, cmd.OracleUpdate(0, 100_000 * E8, 10 * E8, ts))
    w(ts, cmd.RequestQuote(ALICE, 0, "long", 100 * E6, 10, 10_000_000))
    w(ts, cmd.SubmitQuote(BOB, 1, 5_000_000, 100 * E6))
    w(ts, cmd.AcceptQuote(ALICE, 1, 1))
    ts = BOUNDARY_NS + 1
    w(ts, cmd.Tick())  # settles 07:00 -> 08:00: 100 x 0.5% / 8 = 0.0625
    w(ts + 1, cmd.OracleUpdate(0, 102_000 * E8, 10 * E8, ts))
    w(ts + 2, cmd.ClosePosition(ALICE, 1))  # 2 ns of accrued funding: rounds to 0
    ts += 1_000
    w(ts, cmd.OracleUpdate(0, 100_000 * E8, 10 * E8, ts))
    w(ts, cmd.RequestQuote(CAROL, 0, "long", 100 * E6, 10, 10_000_000))
    w(ts, cmd.SubmitQuote(DAVE, 2, 5_000_000, 100 * E6))
    w(ts, cmd.AcceptQuote(CAROL, 2, 2))
    w(ts + 1, cmd.OracleUpdate(0, 94_700 * E8, 10 * E8, ts + 1))
    w(ts + 2, cmd.Liquidate(KEEPER, 2))
    w.close()
    return w


def bare_venue_config(data_dir, **projections):
    """A venue with nothing but its projections (``[projections]`` overrides): no demo, no
    fsync, any ports, no oracle feed, settlement or hedging — a seeded session drives it."""
    from venue.config import load

    return load(env={}, overrides={"venue": {"data_dir": str(data_dir), "demo": False, "fsync": "none"},
                                   "gateway": {"tcp_port": 0, "http_port": 0}, "oracle": {"source": "none"},
                                   "settlement": {"backend": "none"}, "hedging": {"enabled": "off"},
                                   "projections": projections})


async def submit_session(venue, clock, rounds: int, each_round=None) -> None:
    """A seeded ``replay.generate`` session submitted to ``venue`` round by round, each
    round's commands at once (one group commit, mostly); ``await each_round(round_, pending)``
    may add commands to the round or act before it is submitted."""
    import asyncio

    from replay.generate import Session

    pending: list = []
    session = Session(State(default_config()), lambda command, ts_ns: (
        pending.append(command), execute(session.state, command, ts_ns, 0))[1])
    session.start()
    for round_ in range(rounds):
        session.step()
        clock.now_ns = session.now_ns
        if each_round is not None:
            await each_round(round_, pending)
        await asyncio.gather(*(venue.execute(command) for command in pending))
        pending.clear()
