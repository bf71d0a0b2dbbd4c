"""`agentperp bench escrow`, settlement: how fast and how far behind the settlement
projection mirrors the journal onto the escrow program, in-process (LiteSVM, the embedded
default) and through the JSON-RPC backend (``RpcBackend`` with solana-py's real
``AsyncClient`` against the LiteSVM JSON-RPC peer on loopback, ``adapters/solana/rpc_peer.py``,
served from its own thread).

The load (seeded, built once by the real engine): 16 agents funded on chain, then journal
batches each holding an oracle update, an open (RFQ, quote, accept), a close (full or partial)
once 20 positions are open, and a tick; the virtual clock crosses a funding boundary every 25
batches (a ``FundingSettled`` over every open position). The agents' deposits are made on the
fresh chain before any figure (signed by the agents, as the deposit watcher would find them)
and the projection starts after them: every figure is opens, funding and closes.

Figures, each against a baseline run in alternation with it (``benchmarks/interleave.py``):

- ``escrow.<backend>_settled_events_per_s``: journal events settled per second by
  ``SettlementProjection.run`` over ``THROUGHPUT_BATCHES`` batches, fresh chain each run, GC
  off. Baselines: ``litesvm.raw_tx_per_s`` (a signed memo transaction straight into
  ``LiteSVM.send_transaction``, the floor of any settlement) and
  ``rpc.get_latest_blockhash_per_s`` (one JSON-RPC round trip through the same client and
  peer). Ratios ``escrow.<backend>_settle_ratio_to_baseline``.
- ``escrow.<backend>_lag_s`` / ``_lag_seq`` (p50, p99, max): the venue's path — the
  projection runner (``ledger/projections``) with ``SettlementSink`` following a journal that
  a writer appends to (fsync ``batch``) at a steady offered rate of
  ``LAG_LOAD_OF_CAPACITY`` of that backend's measured throughput. Seconds: from the instant a
  batch is durable to the instant the runner has its settlement confirmed; seq: how many
  events the settlement is behind at the instant each batch becomes durable. Batches of the
  first ``LAG_WARMUP_S`` are left out. Baseline: the same runner, journal and load with a
  projection that settles nothing (``NullSink``: the runner's own read-and-wake lag); ratio
  ``escrow.<backend>_lag_p99_ratio_to_null`` (lower is better).
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import random
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.report import percentiles

USDC = 1_000_000
NS = 1_000_000_000
BASE_NS = 1_767_225_600 * NS  # 2026-01-01T00:00:00Z
ENTRY_E8 = 65_000 * 10**8
AGENTS = 16
AGENT_DEPOSIT_E6 = 1_000_000 * USDC
OPEN_POSITIONS_TARGET = 20  # a close in every batch once this many are open
BATCHES_PER_FUNDING = 25  # the virtual clock crosses a funding boundary every this many batches
THROUGHPUT_BATCHES = {True: 120, False: 400}  # quick: full
LOAD_BATCHES = {True: 600, False: 2_000}
LAG_SECONDS = {True: 5.0, False: 12.0}
LAG_PAIRS = {True: 1, False: 3}
THROUGHPUT_PAIRS = {True: 3, False: 5}
BASELINE_TXS = {True: 1_000, False: 3_000}
BASELINE_RPC_CALLS = {True: 300, False: 1_000}
LAG_LOAD_OF_CAPACITY = 0.5
LAG_WARMUP_S = 1.0
BACKENDS = ("litesvm", "rpc")
TARGETS: dict = {}  # reported figures: no target yet (issue 13 asks for the measurement)


@dataclass
class Batch:
    records: list[bytes]
    last_seq: int
    ts_ns: int
    settled_events: int  # events of the batch the projection sends transactions for


@dataclass
class Load:
    seeds: list[bytes]  # the agents' keypair seeds
    deposits: list[bytes]  # the deposit records (one batch), already on chain when a figure runs
    deposits_last_seq: int
    batches: list[Batch] = field(default_factory=list)


def make_load(batches: int, seed: int = 7) -> Load:
    """The seeded journal of the module docstring, encoded by the real engine."""
    from solders.keypair import Keypair

    from adapters.solana.projection import SETTLED_EVENTS
    from engine import commands as cmd
    from engine.core import execute
    from engine.markets import default_config
    from engine.rejections import Rejected
    from engine.state import State
    from ledger.records import encode_record

    rng = random.Random(seed)
    state = State(default_config())
    cmd_id = 0

    def run(ts_ns: int, command, out: list[bytes]) -> list:
        nonlocal cmd_id
        cmd_id += 1
        seq_before = state.last_seq
        outcome = execute(state, command, ts_ns, cmd_id)
        out.append(encode_record(cmd_id, ts_ns, command, outcome, seq_before))
        assert not isinstance(outcome, Rejected), (command, outcome)
        return outcome

    seeds = [rng.randbytes(32) for _ in range(AGENTS)]
    agents = [str(Keypair.from_seed(s).pubkey()) for s in seeds]
    load = Load(seeds, [], 0)
    for i, agent in enumerate(agents):
        run(BASE_NS, cmd.Deposit(agent, AGENT_DEPOSIT_E6, f"bench:{i}"), load.deposits)
    load.deposits_last_seq = state.last_seq
    price = ENTRY_E8
    open_positions: list[tuple[str, int]] = []
    step_ns = 8 * 3_600 * NS // BATCHES_PER_FUNDING
    for i in range(batches):
        ts = BASE_NS + NS + i * step_ns
        records: list[bytes] = []
        events: list = []
        price += rng.randint(-40, 40) * 10**8
        events += run(ts, cmd.OracleUpdate(0, price, 0, ts, "bench"), records)
        trader, maker = rng.sample(agents, 2)
        size = rng.randint(100, 2_000) * USDC
        rfq = run(ts, cmd.RequestQuote(trader, 0, rng.choice(("long", "short")), size, rng.randint(2, 5), 10**8),
                  records)
        events += rfq
        events += run(ts, cmd.SubmitQuote(maker, rfq[0].rfq_id, rng.randint(-2_000_000, 5_000_000), size), records)
        accepted = run(ts, cmd.AcceptQuote(trader, rfq[0].rfq_id), records)
        events += accepted
        open_positions += [(trader, e.position_id) for e in accepted if type(e).__name__ == "PositionOpened"]
        if len(open_positions) > OPEN_POSITIONS_TARGET:
            agent, pid = open_positions[rng.randrange(len(open_positions))]
            fraction = rng.choice((5_000, 10_000, 10_000))
            events += run(ts, cmd.ClosePosition(agent, pid, fraction), records)
            if fraction == 10_000:
                open_positions.remove((agent, pid))
        events += run(ts, cmd.Tick(), records)  # settles a funding boundary it passed
        load.batches.append(Batch(records, state.last_seq, ts, sum(isinstance(e, SETTLED_EVENTS) for e in events)))
    return load


# ---------------------------------------------------------------------- a fresh chain
class Chain:
    """A fresh chain (the program, its config) with the load's agents funded on it, and a
    backend to it: in-process, or behind the JSON-RPC peer on loopback (its own thread)."""

    def __init__(self, kind: str, program_path: Path, load: Load):
        from solders.keypair import Keypair
        from solders.litesvm import LiteSVM

        from programs.escrow import localnet
        from venue.settlement import litesvm_backend

        self.kind = kind
        if kind == "litesvm":
            self.litesvm = litesvm_backend(program_path)
            self.world = self.litesvm.world
        else:
            self.world = localnet.World(program_path, svm=LiteSVM().with_sigverify(True))
        for s in load.seeds:  # each agent deposits on chain, signing it, as the watcher would find it
            kp = Keypair.from_seed(s)
            self.world.svm.airdrop(kp.pubkey(), 10**9)
            token = self.world.token_account(Keypair.from_seed(hashlib.sha256(s).digest()).pubkey(), kp.pubkey(),
                                             AGENT_DEPOSIT_E6)
            self.world.deposit(localnet.Agent(kp, token), AGENT_DEPOSIT_E6)
        self.url = self._peer = self._peer_loop = None
        if kind == "rpc":
            from adapters.solana.rpc_peer import RpcPeer, serve
            from ledger.projections.external import LoopThread

            self._peer_loop = LoopThread("bench-rpc-peer")
            self._peer, self.url = self._peer_loop.call(serve(RpcPeer(self.world.svm)))

    def backend(self):
        """The backend (make it on the loop that will use it: an AsyncClient binds to one)."""
        if self.kind == "litesvm":
            return self.litesvm
        from solana.rpc.async_api import AsyncClient

        from adapters.solana.backend_rpc import RpcBackend
        from venue.settlement import escrow_program

        w = self.world
        return RpcBackend(AsyncClient(self.url), escrow_program(), w.vault, w.authority, w.payer, usdc_mint=w.mint)

    def close(self) -> None:
        if self._peer_loop is not None:
            self._peer_loop.call(self._peer.cleanup())
            self._peer_loop.close()


def _projection(backend, store_path: Path):
    from adapters.solana.checkpoint import CheckpointStore
    from adapters.solana.projection import SettlementProjection

    return SettlementProjection(backend, CheckpointStore(store_path), on_unmirrorable="halt",
                                on_program_error="halt")


async def _after_deposits(projection, load: Load) -> None:
    """Checkpoint the projection after the deposits (already on chain): it settles the rest."""
    from adapters.solana.checkpoint import Checkpoint

    projection.store.save(Checkpoint(chain_id=await projection.backend.chain_id(), seq=load.deposits_last_seq))


def _write_journal(journal_dir: Path, load: Load, batches: int) -> None:
    from ledger.journal import Journal

    journal = Journal.open(journal_dir, fsync_policy="none")
    journal.append_batch(load.deposits)
    for batch in load.batches[:batches]:
        journal.append_batch(batch.records)
    journal.close()


# ---------------------------------------------------------------------- throughput
def settled_events_per_s(kind: str, program_path: Path, load: Load, scratch: Path, batches: int) -> float:
    """One run: the projection settles ``batches`` batches onto a fresh chain."""
    journal_dir = Path(tempfile.mkdtemp(dir=scratch))
    _write_journal(journal_dir / "journal", load, batches)
    chain = Chain(kind, program_path, load)

    async def run() -> float:
        backend = chain.backend()
        projection = _projection(backend, journal_dir / "cp.json")
        await _after_deposits(projection, load)
        gc.collect()
        gc.disable()
        try:
            started = time.perf_counter()
            stats = await projection.run(journal_dir / "journal")
            elapsed = time.perf_counter() - started
        finally:
            gc.enable()
            if kind == "rpc":
                await backend.close()
        assert stats.unmirrored == 0 and stats.last_seq == load.batches[batches - 1].last_seq, stats
        return stats.events_settled / elapsed

    try:
        return asyncio.run(run())
    finally:
        chain.close()


def raw_tx_per_s(program_path: Path, load: Load, txs: int) -> float:
    """Baseline, in-process: signed memo transactions straight into LiteSVM, per second."""
    from solders.instruction import Instruction
    from solders.message import Message
    from solders.transaction import Transaction

    from adapters.solana.backend_litesvm import MEMO_PROGRAM_ID

    chain = Chain("litesvm", program_path, load)
    svm, payer = chain.world.svm, chain.world.payer
    blockhash = svm.latest_blockhash()
    built = [Transaction([payer], Message.new_with_blockhash([Instruction(MEMO_PROGRAM_ID, b"%d" % i, [])],
                                                             payer.pubkey(), blockhash), blockhash)
             for i in range(txs)]
    gc.collect()
    gc.disable()
    try:
        started = time.perf_counter()
        for tx in built:
            result = svm.send_transaction(tx)
        elapsed = time.perf_counter() - started
    finally:
        gc.enable()
    assert not hasattr(result, "err"), result
    return txs / elapsed


def blockhash_round_trips_per_s(program_path: Path, load: Load, calls: int) -> float:
    """Baseline, JSON-RPC: ``getLatestBlockhash`` round trips per second through the same
    client to the same peer (what every settlement transaction starts with)."""
    chain = Chain("rpc", program_path, load)

    async def run() -> float:
        backend = chain.backend()
        try:
            await backend.client.get_latest_blockhash()  # connection warm
            gc.collect()
            gc.disable()
            started = time.perf_counter()
            for _ in range(calls):
                await backend.client.get_latest_blockhash()
            return calls / (time.perf_counter() - started)
        finally:
            gc.enable()
            await backend.close()

    try:
        return asyncio.run(run())
    finally:
        chain.close()


# ---------------------------------------------------------------------- lag under steady load
class NullSink:
    """A projection that settles nothing: the runner's own lag (the lag baseline)."""

    name = "null"

    def __init__(self, seq: int):
        self.seq = seq

    def load_checkpoint(self) -> int:
        return self.seq

    def recover(self) -> None:
        pass

    def apply(self, records, after_seq: int) -> int:
        return records[-1].last_seq

    def close(self) -> None:
        pass


@dataclass
class LagRun:
    lag_s: list[float]
    lag_seq: list[int]
    offered_events_per_s: float
    seconds: float


def lag_run(kind: str | None, program_path: Path, load: Load, scratch: Path, batches_per_s: float,
            seconds: float) -> LagRun:
    """Batches appended (fsync ``batch``) at ``batches_per_s`` for ``seconds`` while the runner
    settles them onto a fresh chain (``kind``), or through ``NullSink`` (``kind`` None)."""
    from adapters.solana.runner_sink import SettlementSink
    from ledger.journal import Journal
    from ledger.projections.runner import MovingTail, Runner

    run_dir = Path(tempfile.mkdtemp(dir=scratch))
    journal_dir = run_dir / "journal"
    journal = Journal.open(journal_dir, fsync_policy="batch")
    journal.append_batch(load.deposits)
    n = min(len(load.batches), max(1, int(seconds * batches_per_s)))
    batches = load.batches[:n]
    chain = backend = None
    if kind is None:
        sink = NullSink(load.deposits_last_seq)
    else:
        chain = Chain(kind, program_path, load)
        backend = chain.backend()
        sink = SettlementSink(_projection(backend, run_dir / "cp.json"))
        sink.loop.call(_after_deposits(sink.projection, load))  # on the loop the backend lives on

    async def go() -> LagRun:
        tail = MovingTail(load.deposits_last_seq)  # moved by the bench's writer, as the hub moves the venue's
        runner = Runner(journal_dir, [sink], tail=tail)
        status = runner.status[sink.name]
        await runner.start()
        await runner.wait_for_seq(sink.name, load.deposits_last_seq)
        loop = asyncio.get_running_loop()
        durable_at: list[float] = []
        behind: list[int] = []
        confirmed_at: list[float] = []

        async def write() -> None:
            started = time.perf_counter()
            for i, batch in enumerate(batches):
                delay = started + i / batches_per_s - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                await loop.run_in_executor(None, journal.append_batch, batch.records)
                durable_at.append(time.perf_counter())
                behind.append(batch.last_seq - status.seq)
                tail.move(batch.last_seq, batch.ts_ns)

        async def confirm() -> None:
            for batch in batches:
                await runner.wait_for_seq(sink.name, batch.last_seq)
                confirmed_at.append(time.perf_counter())

        try:
            await asyncio.gather(write(), confirm())
        finally:
            await runner.stop()
        warm = durable_at[0] + LAG_WARMUP_S
        kept = [i for i, t in enumerate(durable_at) if t >= warm] or list(range(len(durable_at)))
        elapsed = durable_at[-1] - durable_at[0] or 1e-9
        return LagRun([confirmed_at[i] - durable_at[i] for i in kept], [behind[i] for i in kept],
                      sum(b.settled_events for b in batches[1:]) / elapsed, elapsed)

    try:
        return asyncio.run(go())
    finally:
        journal.close()
        if chain is not None:
            if kind == "rpc":
                sink.loop.call(backend.close())
            sink.close()
            chain.close()


# ---------------------------------------------------------------------- the suite
def measure(quick: bool = False, program_path: Path | None = None) -> dict:
    """Every settlement figure of the module docstring, JSON-ready."""
    from benchmarks.interleave import HIGHER, LOWER, interleave
    from programs.escrow.build import build

    program_path = program_path or build()
    load = make_load(LOAD_BATCHES[quick])
    per_batch = sum(b.settled_events for b in load.batches) / len(load.batches)
    figures: dict = {"escrow.load": {"batches": len(load.batches), "settled_events_per_batch": round(per_batch, 3),
                                     "agents": AGENTS, "open_positions_target": OPEN_POSITIONS_TARGET,
                                     "batches_per_funding_boundary": BATCHES_PER_FUNDING}}
    batches = THROUGHPUT_BATCHES[quick]
    with tempfile.TemporaryDirectory(prefix="agentperp-bench-escrow-") as tmp:
        scratch = Path(tmp)
        settled_events_per_s("litesvm", program_path, load, scratch, 20)  # warm-up: imports, caches
        baselines = {"litesvm": ("litesvm.raw_tx_per_s", lambda: raw_tx_per_s(program_path, load, BASELINE_TXS[quick])),
                     "rpc": ("rpc.get_latest_blockhash_per_s",
                             lambda: blockhash_round_trips_per_s(program_path, load, BASELINE_RPC_CALLS[quick]))}
        for kind in BACKENDS:
            name, baseline = baselines[kind]
            ratio = interleave(lambda: settled_events_per_s(kind, program_path, load, scratch, batches), baseline,
                               figure=f"escrow.{kind}_settled_events_per_s", baseline=name,
                               pairs=THROUGHPUT_PAIRS[quick], better=HIGHER, label=f"escrow {kind} throughput")
            figures[f"escrow.{kind}_settle_ratio_to_baseline"] = ratio
            figures[f"escrow.{kind}_settled_events_per_s"] = round(ratio["figure_spread"]["median"], 1)
            figures[name] = round(ratio["baseline_spread"]["median"], 1)

            capacity = ratio["figure_spread"]["median"]
            batches_per_s = LAG_LOAD_OF_CAPACITY * capacity / per_batch
            runs: dict[str, list[LagRun]] = {"settle": [], "null": []}

            def settle_lag() -> float:
                runs["settle"].append(lag_run(kind, program_path, load, scratch, batches_per_s, LAG_SECONDS[quick]))
                return percentiles(runs["settle"][-1].lag_s)["p99"]

            def null_lag() -> float:
                runs["null"].append(lag_run(None, program_path, load, scratch, batches_per_s, LAG_SECONDS[quick]))
                return percentiles(runs["null"][-1].lag_s)["p99"]

            lag_ratio = interleave(settle_lag, null_lag, figure=f"escrow.{kind}_lag_s.p99", baseline="null.lag_s.p99",
                                   pairs=LAG_PAIRS[quick], better=LOWER, label=f"escrow {kind} lag")
            figures[f"escrow.{kind}_lag_p99_ratio_to_null"] = lag_ratio
            figures[f"escrow.{kind}_lag_s"] = percentiles([x for r in runs["settle"] for x in r.lag_s])
            figures[f"escrow.{kind}_lag_seq"] = percentiles([x for r in runs["settle"] for x in r.lag_seq])
            figures[f"escrow.{kind}_null_lag_s"] = percentiles([x for r in runs["null"] for x in r.lag_s])
            figures[f"escrow.{kind}_lag_offered_events_per_s"] = round(
                sum(r.offered_events_per_s for r in runs["settle"]) / len(runs["settle"]), 1)
    return figures
