"""`agentperp bench journal`: the journal's append and read throughput on real files.

- ``journal.append_events_per_s.{batch,always,none}``: seeded records shaped like a command
  with 1–3 events (msgpack, ~150–300 bytes), appended in batches of 1 000 with
  ``Journal.append_batch`` under each fsync policy; events = records × events per record.
  Warm-up batches first, GC off, per-batch latency percentiles in ms.
- ``journal.read_events_per_s``: ``JournalReader.read(1)`` over the `batch` journal —
  read, crc32c check and record-header decode of every frame (page cache warm).

The journals are written under a temporary directory on the same file system as /tmp
(override with AGENTPERP_BENCH_DIR) and deleted afterwards.
"""

from __future__ import annotations

import gc
import os
import platform
import random
import shutil
import tempfile
import time
from pathlib import Path

import msgspec
import numpy as np

from benchmarks.report import emit
from ledger.journal import FsyncPolicy, Journal, JournalReader

SEED = 20261121
RECORDS_PER_BATCH = 1_000
WARMUP_BATCHES = 3
TARGETS = {"journal.append_events_per_s.batch": (">=", 1_000_000),
           "journal.read_events_per_s": (">=", 2_000_000),
           "recovery.seconds_1m_events.with_snapshot": ("<=", 2.0)}

_COMMAND_TAGS = ("request_quote.v1", "submit_quote.v1", "accept_quote.v1", "oracle_update.v1")
_EVENT_TAGS = ("rfq_opened.v1", "quote_submitted.v1", "position_opened.v1", "transfer.v1")


def make_batches(batches_count: int, seed: int = SEED) -> tuple[list[list[bytes]], int]:
    """Return seeded record batches and the number of events they carry."""
    rng = random.Random(seed)
    encode = msgspec.msgpack.Encoder().encode
    ts_ns = 1_767_225_600_000_000_000
    cmd_id, seq, events_total = 1, 1, 0
    batches = []
    for _ in range(batches_count):
        batch = []
        for _ in range(RECORDS_PER_BATCH):
            events_count = rng.randint(1, 3)
            ts_ns += rng.randint(1_000, 50_000)
            agent = f"{rng.getrandbits(176):044x}"  # the length of a base58 Solana key
            client_id = f"c-{rng.getrandbits(64):016x}"
            command = [rng.choice(_COMMAND_TAGS), agent, rng.randint(0, 2),
                       rng.randint(10, 1_000_000) * 1_000_000, rng.randint(1, 20),
                       rng.randint(-5_000_000, 5_000_000), client_id]
            events = [[rng.choice(_EVENT_TAGS), seq + k, rng.getrandbits(40),
                       rng.randint(1, 10**13), rng.randint(-5_000_000, 5_000_000)]
                      for k in range(events_count)]
            batch.append(encode([cmd_id, seq, seq + events_count - 1, ts_ns, command, events]))
            cmd_id += 1
            seq += events_count
            events_total += events_count
        batches.append(batch)
    return batches, events_total


def percentiles_ms(seconds: list[float]) -> dict[str, float]:
    a = np.asarray(seconds) * 1e3
    return {"p50": float(np.percentile(a, 50)), "p99": float(np.percentile(a, 99)),
            "max": float(a.max())}


def time_appends(directory: Path, policy: FsyncPolicy, batches: list[list[bytes]],
                 warmup_batches: int) -> tuple[float, list[float]]:
    """Append `batches` to a fresh journal; return seconds for the measured ones and each
    measured batch's latency (the first `warmup_batches` are written but not timed)."""
    journal = Journal.open(directory, fsync_policy=policy)
    latencies_s = []
    gc.collect()
    gc.disable()
    try:
        for batch in batches[:warmup_batches]:
            journal.append_batch(batch)
        started = time.perf_counter()
        for batch in batches[warmup_batches:]:
            batch_started = time.perf_counter()
            journal.append_batch(batch)
            latencies_s.append(time.perf_counter() - batch_started)
        elapsed_s = time.perf_counter() - started
    finally:
        gc.enable()
        journal.close()
    return elapsed_s, latencies_s


def time_read(directory: Path, repeats: int) -> tuple[float, int]:
    """Read the whole journal `repeats` times; return the best seconds and the events."""
    best_s, events = float("inf"), 0
    for _ in JournalReader(directory).read(1):
        pass  # warm-up: page cache, numba kernel loaded from its cache
    gc.disable()
    try:
        for _ in range(repeats):
            events = 0
            started = time.perf_counter()
            for header, _payload in JournalReader(directory).read(1):
                events += header.last_seq - header.first_seq + 1
            best_s = min(best_s, time.perf_counter() - started)
    finally:
        gc.enable()
    return best_s, events


def measure(quick: bool = False) -> dict:
    batches_count = 20 if quick else 200
    always_batches_count = 2 if quick else 5  # one sync per record: keep it short
    batches, _ = make_batches(WARMUP_BATCHES + batches_count)
    sizes = [len(p) for batch in batches for p in batch]
    figures: dict = {"machine.cores": os.cpu_count(), "machine.python": platform.python_version(),
                     "seed": SEED, "journal.records_per_batch": RECORDS_PER_BATCH,
                     "journal.payload_bytes": {"mean": float(np.mean(sizes)),
                                               "min": float(min(sizes)), "max": float(max(sizes))}}
    root = Path(tempfile.mkdtemp(prefix="agentperp-bench-journal-",
                                 dir=os.environ.get("AGENTPERP_BENCH_DIR")))
    try:
        for policy, count in ((FsyncPolicy.NONE, batches_count), (FsyncPolicy.BATCH, batches_count),
                              (FsyncPolicy.ALWAYS, always_batches_count)):
            # Flush what the previous run left dirty, so its writeback does not land on
            # this run's syncs.
            os.sync()
            used = batches[:WARMUP_BATCHES + count]
            events = sum(_events_of(batch) for batch in used[WARMUP_BATCHES:])
            elapsed_s, latencies_s = time_appends(root / policy.value, policy, used, WARMUP_BATCHES)
            figures[f"journal.append_events_per_s.{policy.value}"] = events / elapsed_s
            figures[f"journal.append_records_per_s.{policy.value}"] = (
                RECORDS_PER_BATCH * count / elapsed_s)
            figures[f"journal.append_batch_ms.{policy.value}"] = percentiles_ms(latencies_s)
        read_s, read_events = time_read(root / FsyncPolicy.BATCH.value, 3)
        figures["journal.read_events"] = read_events
        figures["journal.read_events_per_s"] = read_events / read_s
        figures["journal.read_mb_per_s"] = sum(
            p.stat().st_size for p in (root / "batch").glob("*.seg")) / read_s / 1e6
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return figures


def measure_recovery(quick: bool = False) -> dict:
    """``recovery.seconds_1m_events``: start-up time over an engine journal of 1M events
    (the bench's realistic mix), with a snapshot near its end and with none (full replay)."""
    from benchmarks.engine import build_mix
    from benchmarks.sessions import write_session
    from engine.markets import default_config
    from ledger import snapshots
    from ledger.recovery import recover

    events_wanted = 100_000 if quick else 1_000_000
    rounds = events_wanted // 5  # the mix makes ~5 events per round
    root = Path(tempfile.mkdtemp(prefix="agentperp-bench-recovery-", dir=os.environ.get("AGENTPERP_BENCH_DIR")))
    try:
        mix = build_mix(rounds)
        config = default_config()
        live = write_session(root, mix, config, batch_size=1_000, snapshot_every=len(mix) - len(mix) // 50)
        figures: dict = {"recovery.journal_events": live.last_seq}
        scale = 1_000_000 / live.last_seq
        for label, use_snapshots in (("with_snapshot", True), ("full_replay", False)):
            gc.collect()
            started = time.perf_counter()
            recovered = recover(root, config, use_snapshots=use_snapshots)
            seconds = time.perf_counter() - started
            recovered.journal.close()
            figures[f"recovery.seconds_1m_events.{label}"] = seconds * scale
            figures[f"recovery.snapshot_seq.{label}"] = recovered.snapshot_seq
        figures["recovery.snapshot_bytes"] = snapshots.list_snapshots(root / "snapshots")[0].stat().st_size
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return figures


def _events_of(batch: list[bytes]) -> int:
    from ledger.codec import decode_header

    return sum(h.last_seq - h.first_seq + 1 for h in map(decode_header, batch))


def main(json_path: str | None = None, quick: bool = False) -> int:
    """Run the journal benchmarks, print a table, optionally write the figures as JSON."""
    figures = measure(quick)
    figures.update(measure_recovery(quick))
    return emit(figures, TARGETS, json_path)


if __name__ == "__main__":
    raise SystemExit(main())
