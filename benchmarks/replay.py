"""`agentperp bench replay`: the replay toolkit's throughput as ratios to the journal's raw
read rate on the same journal, interleaved (``benchmarks.interleave``).

The baseline, ``journal.read_events_per_s``: ``JournalReader.read(1)`` over the journal —
read, crc32c check and record-header decode of every frame, events counted from the headers
(what `bench journal` measures, here on the replay's own journal, page cache warm).

- ``replay.verify_ratio_to_read``: ``replay.verify.verify`` as `agentperp replay verify` runs
  it (read, crc, decode, apply every event, state hash and invariants at every checkpoint)
  events/s ÷ the raw read rate; figure and baseline in alternation, ``PAIRS_MIN`` rounds.
  Target >= 0.3. The data directory holds the snapshots the generator writes as the venue
  does (one every 100 000 commands, pruned by the venue's policy), so verify proves
  stretches of the journal at once, one per core, each from a snapshot
  (``replay.verify_stretches`` says how many it used; ``replay.journal_snapshots`` how many
  there were).
- ``replay.verify_one_pass_ratio_to_read``: verify in one pass from seq 1
  (``use_snapshots=False``), reading ahead in a second process when that pays
  (``ReplayJournal.read_ahead_pays``: two cores, ``fork``, a journal of 4 MiB or more;
  ``replay.verify_read_ahead`` says whether it did): frames, crc and gathering there,
  decoding and applying here. In the same rounds.
- ``replay.verify_one_process_ratio_to_read``: verify in one pass and one process
  (``use_snapshots=False, read_ahead=False``), in the same rounds.
- ``replay.export_ratio_to_read``: every export table to Parquet, rows/s ÷ raw read events/s.
- ``replay.whatif_ratio_to_read``: re-deciding the commands under a changed maintenance
  fraction (both worlds), commands/s ÷ raw read events/s.
- ``replay.decode_events_per_s``: read + decode alone (no apply) as verify does them
  (``ReplayJournal.event_runs``: the events of 256 records at a time gathered into one flat
  list and decoded, checkpoints marked), one run.
- ``journal.read_spans_events_per_s``: the raw read as replay does it
  (``JournalReader.read_spans``: the same checks, no header object and no bytes object per
  record), one run; the baseline above stays ``read``'s (what `bench journal` and every other
  reader measure).
- ``memory.replay_rss_mb_per_1m_events``: the peak RSS a verify adds (a fresh process:
  high-water mark minus the RSS after imports), per million journaled events;
  ``memory.replay_child_process_peak_mb``: the peak RSS of the largest process it forked (a
  stretch verified from a snapshot, or the read-ahead), whole.

The journal is written by ``replay.generate`` (seeded) under a temporary directory (override
with AGENTPERP_BENCH_DIR), or taken from AGENTPERP_REPLAY_JOURNAL (a data directory written by
`agentperp journal generate`, e.g. the 10 000 000-event one). JIT warm-up first; GC paused
by the tools themselves and by the raw read.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.interleave import PAIRS_MIN, interleave, interleave_runs, ratio_summary
from benchmarks.report import emit
from engine.events import Checkpoint
from ledger.journal import JournalReader
from ledger.snapshots import list_snapshots
from replay import generate
from replay.export import export
from replay.source import ReplayJournal, gc_paused, resolve
from replay.verify import verify
from replay.whatif import whatif

TARGETS = {"replay.verify_ratio_to_read": (">=", 0.3)}
WHATIF_SETTINGS = ["markets.*.maintenance_of_initial_bps=4000"]


READ_S_MIN = 0.25  # a small journal is read again until this long has passed: a run long enough to time


def _passes_per_s(one_pass) -> float:
    """``one_pass()`` (its events) repeated, whole, until ``READ_S_MIN`` has passed, GC off:
    events/s."""
    gc.collect()
    gc.disable()
    try:
        events = 0
        started = time.perf_counter()
        while True:
            events += one_pass()
            elapsed = time.perf_counter() - started
            if elapsed >= READ_S_MIN:
                return events / elapsed
    finally:
        gc.enable()


def raw_read_events_per_s(journal_dir: Path) -> float:
    """Frames + crc + record header of the whole journal: events/s."""
    def one_pass() -> int:
        events = 0
        for header, _payload in JournalReader(journal_dir).read(1):
            events += header.last_seq - header.first_seq + 1
        return events
    return _passes_per_s(one_pass)


def read_spans_events_per_s(journal_dir: Path, events_per_pass: int) -> float:
    """The same frames, crc and continuity checks through ``JournalReader.read_spans`` (what
    replay reads with: payload spans a chunk at a time, no object per record): events/s
    (``events_per_pass``: the journal's events, from a verify)."""
    def one_pass() -> int:
        for _spans in JournalReader(journal_dir).read_spans(1):
            pass
        return events_per_pass
    return _passes_per_s(one_pass)


def _decode_events_per_s(path: Path) -> float:
    journal = ReplayJournal(path)
    started = time.perf_counter()
    events = 0
    with gc_paused():
        for run in journal.event_runs(0, marked=Checkpoint):
            events += len(run.events)
    return events / (time.perf_counter() - started)


_RSS_PROBE = """
import json, resource, sys
from ledger import compiled; compiled.prepare()
from replay.verify import verify
def kb(field):
    for line in open('/proc/self/status'):
        if line.startswith(field):
            return int(line.split()[1])
verify(sys.argv[2])  # JIT and imports in the baseline, not in the figure
before = kb('VmRSS:')
result = verify(sys.argv[1])
print(json.dumps({'events': result.events, 'before_kb': before, 'peak_kb': kb('VmHWM:'),
                  'children_peak_kb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def replay_rss_per_1m_events(data_dir: Path, warm_dir: Path) -> dict:
    """A verify in a fresh process: the peak RSS it adds over the process after imports and a
    small warm-up verify (of ``warm_dir``), in MB per million journaled events."""
    done = subprocess.run([sys.executable, "-c", _RSS_PROBE, str(data_dir), str(warm_dir)], capture_output=True,
                          text=True, timeout=1_800)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    probe = json.loads(done.stdout.strip().splitlines()[-1])
    added_mb = (probe["peak_kb"] - probe["before_kb"]) / 1024
    return {"memory.replay_rss_mb_per_1m_events": added_mb * 1e6 / probe["events"],
            "memory.replay_rss_added_mb": added_mb, "memory.replay_events": probe["events"],
            "memory.replay_process_peak_mb": probe["peak_kb"] / 1024,
            # The largest of its processes besides (a stretch from a snapshot, or the read-ahead).
            "memory.replay_child_process_peak_mb": probe["children_peak_kb"] / 1024}


def measure(quick: bool = False, out_dir: Path | None = None) -> dict:
    events_target = 50_000 if quick else 1_000_000
    whatif_commands = 10_000 if quick else 200_000
    pairs = PAIRS_MIN
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
        journal_dir = resolve(data_dir)
        # Warm-up: numba kernels (journal walk, sweeps), the decoders, the page cache.
        warm = scratch / "warm"
        generate.generate(warm, 3_000, progress=False)
        verify(warm)
        whatif(warm, WHATIF_SETTINGS)
        export(warm, scratch / "warm-export", "parquet")
        raw_read_events_per_s(journal_dir)
        read = lambda: raw_read_events_per_s(journal_dir)  # noqa: E731

        verified: dict = {}  # the last result of each way of running verify, by its options

        def run_verify(**how) -> float:
            result = verify(data_dir, **how)
            assert result.ok, result.divergence
            verified[tuple(how.items())] = result
            return result.events_per_s

        # verify as `agentperp replay verify` runs it (stretches from the snapshots at once,
        # else its read ahead in a second process when that pays), in one pass from seq 1,
        # in one pass and one process; the raw read.
        values = interleave_runs({"replay.events_per_s": run_verify,
                                  "replay.one_pass_events_per_s": lambda: run_verify(use_snapshots=False),
                                  "replay.one_process_events_per_s":
                                      lambda: run_verify(use_snapshots=False, read_ahead=False),
                                  "journal.read_events_per_s": read}, rounds=pairs, label="replay verify / raw read")
        ratios = {"replay.verify_ratio_to_read": "replay.events_per_s",
                  "replay.verify_one_pass_ratio_to_read": "replay.one_pass_events_per_s",
                  "replay.verify_one_process_ratio_to_read": "replay.one_process_events_per_s"}
        for ratio, name in ratios.items():
            figures[ratio] = ratio_summary(values[name], values["journal.read_events_per_s"], figure=name,
                                           baseline="journal.read_events_per_s")
            figures[name] = figures[ratio]["figure_spread"]["median"]
        as_run = verified[()]
        figures["replay.verify_stretches"] = as_run.stretches
        journal = ReplayJournal(data_dir)
        figures["replay.journal_snapshots"] = len(list_snapshots(journal.snapshot_dir)) if journal.snapshot_dir else 0
        figures["replay.verify_read_ahead"] = journal.read_ahead_pays()
        figures["replay.journal_events"] = as_run.events
        figures["replay.journal_records"] = as_run.records
        figures["journal.read_events_per_s"] = figures["replay.verify_ratio_to_read"]["baseline_spread"]["median"]
        figures["replay.decode_events_per_s"] = _decode_events_per_s(data_dir)
        figures["journal.read_spans_events_per_s"] = read_spans_events_per_s(journal_dir, as_run.events)

        exported: list = []

        def run_export() -> float:
            out = scratch / "export"
            shutil.rmtree(out, ignore_errors=True)
            result = export(data_dir, out, "parquet")
            exported.append(result)
            return result.rows_per_s

        figures["replay.export_ratio_to_read"] = interleave(
            run_export, read, pairs=pairs, figure="replay.export_rows_per_s", baseline="journal.read_events_per_s",
            label="replay export / raw read")
        figures["replay.export_rows"] = sum(exported[0].rows.values())
        figures["replay.export_rows_per_s"] = figures["replay.export_ratio_to_read"]["figure_spread"]["median"]

        whatifs: list = []

        def run_whatif() -> float:
            result = whatif(data_dir, WHATIF_SETTINGS, max_commands=whatif_commands)
            whatifs.append(result)
            return result.commands_per_s

        figures["replay.whatif_ratio_to_read"] = interleave(
            run_whatif, read, pairs=pairs, figure="replay.whatif_commands_per_s",
            baseline="journal.read_events_per_s", label="replay what-if / raw read")
        figures["replay.whatif_commands"] = whatifs[0].commands
        figures["replay.whatif_commands_per_s"] = figures["replay.whatif_ratio_to_read"]["figure_spread"]["median"]

        figures.update(replay_rss_per_1m_events(data_dir, warm))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return figures


def main(json_path: str | None = None, quick: bool = False) -> int:
    return emit(measure(quick), TARGETS, json_path)
