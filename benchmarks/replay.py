"""`agentperp bench replay`: the replay toolkit's throughput on a generated journal.

- ``replay.events_per_s``: ``replay.verify.verify`` from seq 1 (read, crc, decode, apply
  every event, state hash and invariants at every checkpoint); also the split between
  read + decode alone (``replay.decode_events_per_s``) and the whole.
- ``replay.export_rows_per_s``: every export table to Parquet.
- ``replay.whatif_commands_per_s``: re-deciding the commands under a changed maintenance
  fraction (both worlds: the journal's applied, the what-if's executed).

The journal is written by ``replay.generate`` (seeded) under a temporary directory (override
with AGENTPERP_BENCH_DIR), or taken from AGENTPERP_REPLAY_JOURNAL (a data directory written by
`agentperp journal generate`, e.g. the 10 000 000-event one). JIT warm-up first, GC paused
by the tools themselves; verify is timed three times and each figure is the median.
"""

from __future__ import annotations

import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.report import emit, percentiles
from replay import generate
from replay.export import export
from replay.source import ReplayJournal, gc_paused
from replay.verify import verify
from replay.whatif import whatif

TARGETS = {"replay.events_per_s": (">=", 1_000_000)}


def _decode_events_per_s(path: Path) -> float:
    journal = ReplayJournal(path)
    started = time.perf_counter()
    events = 0
    with gc_paused():
        for batch in journal.event_record_batches():
            for record in batch:
                events += len(record.events)
    return events / (time.perf_counter() - started)


def measure(quick: bool = False) -> dict:
    events_target = 100_000 if quick else 1_000_000
    whatif_commands = 20_000 if quick else 200_000
    figures: dict = {"machine.cores": os.cpu_count(), "machine.python": platform.python_version(),
                     "seed": generate.SEED}
    given = os.environ.get("AGENTPERP_REPLAY_JOURNAL")
    scratch = Path(tempfile.mkdtemp(prefix="bench-replay-", dir=os.environ.get("AGENTPERP_BENCH_DIR")))
    try:
        if given:
            data_dir = Path(given)
        else:
            data_dir = scratch / "data"
            started = time.perf_counter()
            written = generate.generate(data_dir, events_target, progress=False)
            figures["generate.seconds"] = time.perf_counter() - started
            figures["generate.events_per_s"] = written.events / figures["generate.seconds"]
        # Warm-up: numba kernels (journal walk, sweeps) and the decoders.
        warm = scratch / "warm"
        generate.generate(warm, 3_000, progress=False)
        verify(warm)
        whatif(warm, ["markets.*.maintenance_of_initial_bps=4000"])

        runs = [verify(data_dir) for _ in range(1 if given else 3)]
        assert all(r.ok for r in runs), runs[0].divergence
        rates = [r.events_per_s for r in runs]
        figures["replay.journal_events"] = runs[0].events
        figures["replay.journal_records"] = runs[0].records
        figures["replay.events_per_s"] = sorted(rates)[len(rates) // 2]
        figures["replay.verify_seconds"] = sorted(r.seconds for r in runs)[len(runs) // 2]
        figures["replay.verify_events_per_s_runs"] = percentiles(rates)
        figures["replay.decode_events_per_s"] = _decode_events_per_s(data_dir)

        exported = export(data_dir, scratch / "export", "parquet")
        figures["replay.export_rows"] = sum(exported.rows.values())
        figures["replay.export_rows_per_s"] = exported.rows_per_s

        result = whatif(data_dir, ["markets.*.maintenance_of_initial_bps=4000"], max_commands=whatif_commands)
        figures["replay.whatif_commands"] = result.commands
        figures["replay.whatif_commands_per_s"] = result.commands_per_s
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return figures


def main(json_path: str | None = None, quick: bool = False) -> int:
    return emit(measure(quick), TARGETS, json_path)
