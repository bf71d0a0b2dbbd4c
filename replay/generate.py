"""`agentperp journal generate --events N DIR`: write a seeded synthetic journal for ops.

DIR is a **data directory**: the journal goes to ``DIR/journal`` (so `agentperp replay verify
DIR`, `agentperp journal info DIR/journal` and the venue's recovery all read it). DIR must
not hold a journal already.

The session is the benchmark mix of ``benchmarks.engine.build_mix`` made endless and
streamed (commands are generated from the live state, executed once through
``engine.core.execute`` with ``default_config()`` and journaled in group commits), plus
what a replay must see: 200 traders and 20 makers; per round an oracle update of one
market, an RFQ (10% of them 1h, 5% 24h) with 3 firm quotes, an accept of the best (5% left
to expire); closes by either party (some partial), margin adds; a random walk with
occasional jumps of 2–4% that make positions liquidatable, some liquidated by a keeper, the
rest by the engine after its 2 s grace; a Tick every 4 rounds. A round is 5 s of venue
time, from 2026-01-01 07:50 UTC: the first 8h funding boundary comes after 120 rounds, then
one every 5 760 rounds. About one event per record (~200 bytes); 10 million events are ~2 GB.
Checkpoints every 100 000 events (the engine's default). The journal's first record is its
genesis (``ledger.genesis``): the configuration, so every reader finds it there.

Snapshots go to ``DIR/snapshots`` as the venue writes them: one every 100 000 commands (the
venue's ``snapshot_every_commands``), each once its record is durable, with the proof of its
journal, pruned by the venue's policy (``ledger.snapshots.prune``). ``replay verify`` starts
stretches it verifies in parallel from them.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine import commands as cmd
from engine.core import execute
from engine.markets import EngineConfig, default_config
from engine.rejections import Rejected
from engine.state import State, export_state, state_hash
from engine.units import NS_PER_S
from ledger import snapshots
from ledger.genesis import write_genesis
from ledger.journal import FsyncPolicy, Journal, list_segments
from ledger.records import encode_record
from ledger.recovery import JOURNAL_DIR, SNAPSHOT_DIR

SEED = 20261121
START_NS = 1_767_253_800 * NS_PER_S  # 2026-01-01T07:50:00Z: a funding boundary 10 minutes in
ROUND_NS = 5 * NS_PER_S
BATCH_RECORDS = 2_000  # records per group commit
TRADERS = 200
MAKERS = 20
KEEPER = "keeper00"
JUMP_PROBABILITY = 0.0003  # per round: a 2–4% jump of the round's market
SNAPSHOT_EVERY_COMMANDS = 100_000  # as the venue's default (venue.config): 0 writes none


@dataclass(frozen=True)
class Generated:
    """What ``generate`` wrote."""

    directory: Path
    records: int
    events: int
    seconds: float
    state_hash: str  # of the live state after the last command
    liquidations: int
    funding_boundaries: int


class Session:
    """An endless seeded session: ``step()`` runs one round of commands through ``sink``.

    ``sink(command, ts_ns) -> events | Rejected`` executes a command (and may journal it);
    the session reads the live ``state`` to pick ids, as a real agent reads acks.
    """

    def __init__(self, state: State, sink, seed: int = SEED, start_ns: int = START_NS,
                 jump_probability: float = JUMP_PROBABILITY) -> None:
        self.state = state
        self.jump_probability = jump_probability
        self.sink = sink
        self.rng = np.random.default_rng(seed)
        self.now_ns = start_ns
        self.traders = [f"trader{i:03d}" for i in range(TRADERS)]
        self.makers = [f"maker{i:02d}" for i in range(MAKERS)]
        self.prices_e8 = [100_000 * 10**8, 4_000 * 10**8, 200 * 10**8][: len(state.config.markets)]
        self.open_positions: list[int] = []
        self.rounds = 0

    def run(self, command):
        return self.sink(command, self.now_ns)

    def start(self) -> None:
        for agent in self.traders + self.makers + [KEEPER]:
            self.run(cmd.Deposit(agent, 10_000_000 * 1_000_000, f"seed-{agent}"))

    def step(self) -> None:
        rng, state = self.rng, self.state
        self.rounds += 1
        self.now_ns += ROUND_NS
        market = int(rng.integers(0, len(self.prices_e8)))
        move = rng.normal(0, 0.0005)
        if rng.random() < self.jump_probability:
            move = float(rng.choice([-1, 1])) * rng.uniform(0.02, 0.04)  # a jump: liquidations
        self.prices_e8[market] = max(int(self.prices_e8[market] * (1 + move)), 10**8)
        price = self.prices_e8[market]
        self.run(cmd.OracleUpdate(market, price, price // 10_000, self.now_ns, "synthetic"))
        if state.flagged and rng.random() < 0.5:  # a keeper beats the engine's grace
            position_id = min(state.flagged)
            self.run(cmd.Liquidate(KEEPER, position_id))
        trader = self.traders[int(rng.integers(0, len(self.traders)))]
        size_e6 = int(rng.integers(10, 5_000)) * 1_000_000
        duration = str(rng.choice(["perpetual", "1h", "24h"], p=[0.85, 0.10, 0.05]))
        opened = self.run(cmd.RequestQuote(trader, market, "long" if rng.random() < 0.5 else "short", size_e6,
                                           int(rng.integers(2, 21)), 10_000_000, duration, 60_000))
        if not isinstance(opened, Rejected):
            rfq_id = opened[0].rfq_id
            for maker_index in rng.choice(len(self.makers), 3, replace=False):
                self.run(cmd.SubmitQuote(self.makers[int(maker_index)], rfq_id,
                                         int(rng.integers(-1_000_000, 5_000_000)), size_e6 // 5, 30_000))
            if rng.random() < 0.95:
                filled = self.run(cmd.AcceptQuote(trader, rfq_id, cmd.BEST_QUOTE, "sig"))
                if not isinstance(filled, Rejected):
                    self.open_positions.append(filled[0].position_id)
        self._maybe_close_or_add()
        if self.rounds % 4 == 0:
            self.run(cmd.Tick())

    def _maybe_close_or_add(self) -> None:
        rng, state = self.rng, self.state
        if not self.open_positions:
            return
        if len(self.open_positions) > 2_000 or rng.random() < 0.3:
            position_id = self.open_positions.pop(int(rng.integers(0, len(self.open_positions))))
            row = state.position_row.get(position_id)
            if row is not None:
                party = state.positions.v.long_agent[row] if rng.random() < 0.5 else state.positions.v.short_agent[row]
                self.run(cmd.ClosePosition(state.agent_keys[party], position_id,
                                           10_000 if rng.random() < 0.8 else 5_000))
        elif rng.random() < 0.05:
            position_id = self.open_positions[int(rng.integers(0, len(self.open_positions)))]
            row = state.position_row.get(position_id)
            if row is not None:
                self.run(cmd.AddMargin(state.agent_keys[state.positions.v.long_agent[row]], position_id,
                                       int(rng.integers(1, 100)) * 1_000_000))


def generate(data_dir: Path | str, events: int, *, seed: int = SEED, config: EngineConfig | None = None,
             progress: bool | None = None, jump_probability: float = JUMP_PROBABILITY,
             snapshot_every_commands: int = SNAPSHOT_EVERY_COMMANDS) -> Generated:
    """Write a session of at least ``events`` events to ``data_dir/journal`` (and its
    snapshots to ``data_dir/snapshots``)."""
    from tqdm import tqdm

    config = config or default_config()
    journal_dir = Path(data_dir) / JOURNAL_DIR
    snapshot_dir = Path(data_dir) / SNAPSHOT_DIR
    if journal_dir.is_dir() and list_segments(journal_dir):
        raise FileExistsError(f"{journal_dir} already holds a journal; choose an empty data directory")
    state = State(config)
    journal = Journal.open(journal_dir, fsync_policy=FsyncPolicy.BATCH)
    try:
        # The journal's first record carries its configuration (ledger.genesis), stamped
        # just before the session's first command.
        genesis = write_genesis(journal, config, START_NS - 1)
    except BaseException:
        journal.close()
        raise
    batch: list[bytes] = []
    counts = {"records": 1, "liquidations": 0, "boundaries": 0}  # the genesis is a record
    bar = tqdm(total=events, unit="ev", unit_scale=True, disable=None if progress is None else not progress,
               desc="generate", file=sys.stderr)

    def sink(command, ts_ns: int):
        counts["records"] += 1
        cmd_id = journal.last_cmd_id + len(batch) + 1
        seq_before = state.last_seq
        outcome = execute(state, command, ts_ns, cmd_id)
        batch.append(encode_record(cmd_id, ts_ns, command, outcome, seq_before))
        if type(outcome) is list:
            for event in outcome:
                name = type(event).__name__
                if name == "PositionLiquidated":
                    counts["liquidations"] += 1
                elif name == "FundingSettled":
                    counts["boundaries"] += 1
        snapshot_due = snapshot_every_commands and cmd_id % snapshot_every_commands == 0
        if len(batch) >= BATCH_RECORDS or snapshot_due:
            last_payload = batch[-1]
            journal.append_batch(batch)  # durable before its snapshot is written, as in the venue
            batch.clear()
            bar.update(state.last_seq - bar.n)
            if snapshot_due:
                snapshots.write_snapshot(snapshot_dir, export_state(state), cmd_id, config,
                                         journal_id=genesis.journal_id,
                                         digest=snapshots.record_digest(last_payload))
                snapshots.prune(snapshot_dir)
        return outcome

    started = time.perf_counter()
    try:
        session = Session(state, sink, seed, jump_probability=jump_probability)
        session.start()
        while state.last_seq < events:
            session.step()
        if batch:
            journal.append_batch(batch)
        bar.update(state.last_seq - bar.n)
    finally:
        bar.close()
        journal.close()
    return Generated(journal_dir, counts["records"], state.last_seq, time.perf_counter() - started,
                     state_hash(state), counts["liquidations"], counts["boundaries"])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agentperp journal generate",
                                     description="Write a seeded synthetic journal (RFQ rounds, oracle moves and "
                                                 "jumps, funding boundaries, liquidations) for ops and benchmarks.")
    parser.add_argument("--events", type=int, required=True, metavar="N", help="at least this many events")
    parser.add_argument("dir", metavar="DIR", help="a data directory: the journal is written to DIR/journal")
    parser.add_argument("--seed", type=int, default=SEED, help=f"RNG seed (default {SEED})")
    parser.add_argument("--checkpoint-every", type=int, default=None, metavar="EVENTS",
                        help="checkpoint interval in events (default: the engine's, 100 000); the journal's "
                             "genesis record carries it (and every other engine parameter) to its readers")
    parser.add_argument("--snapshot-every", type=int, default=SNAPSHOT_EVERY_COMMANDS, metavar="COMMANDS",
                        help=f"a snapshot every this many commands, as the venue writes them (default "
                             f"{SNAPSHOT_EVERY_COMMANDS:,}; 0: none)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.events <= 0:
        print("--events must be positive", file=sys.stderr)
        return 2
    overrides = {} if args.checkpoint_every is None else {"checkpoint_every_events": args.checkpoint_every}
    try:
        result = generate(args.dir, args.events, seed=args.seed, config=default_config(**overrides),
                          progress=False if args.quiet else None, snapshot_every_commands=args.snapshot_every)
    except FileExistsError as exc:
        print(f"agentperp journal generate: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {result.events:,} events in {result.records:,} records to {result.directory} "
          f"in {result.seconds:.1f} s ({result.events / result.seconds:,.0f} events/s); seed {args.seed}; "
          f"{result.liquidations} liquidations, {result.funding_boundaries} funding boundaries; "
          f"final state hash {result.state_hash}")
    return 0
