"""Crash test with real processes: SIGKILL a writer at seeded random moments; after each
kill, recovery must keep every acknowledged record intact and appending must continue.

AGENTPERP_CRASH_TRIALS (default 50) sets the number of trials; AGENTPERP_CRASH_SEED the seed.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from journal_testkit import Records, assert_intact

from ledger.journal import Journal, JournalReader, list_segments

WRITER = Path(__file__).with_name("journal_writer_proc.py")
TRIALS_DEFAULT = 50
SEGMENT_BYTES = 64 * 1024  # small, so kills also land around segment rolls
ACKS_BEFORE_KILL_MAX = 12


def start_writer(directory: Path, seed: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(WRITER), str(directory), str(seed),
                             str(SEGMENT_BYTES)], stdout=subprocess.PIPE, text=True, bufsize=1)


def run_trial(directory: Path, rng: random.Random, acked_max: int) -> int:
    """Start a writer, kill it at a random moment; return the highest acknowledged cmd_id."""
    writer = start_writer(directory, rng.randrange(1 << 30))
    try:
        if rng.random() < 0.1:
            time.sleep(rng.uniform(0, 0.05))  # kill during start-up / recovery
        else:
            kind, recovered = writer.stdout.readline().split()
            assert kind == "R" and int(recovered) >= acked_max, "an acked record was lost"
            for _ in range(rng.randint(0, ACKS_BEFORE_KILL_MAX)):
                kind, last_cmd_id = writer.stdout.readline().split()
                acked_max = max(acked_max, int(last_cmd_id))
            time.sleep(rng.uniform(0, 0.003))  # land the kill anywhere in a batch
    finally:
        writer.send_signal(signal.SIGKILL)
        # Acks that were already in the pipe when the kill landed count too.
        for line in writer.stdout.read().split("\n"):
            if line.startswith("A "):
                acked_max = max(acked_max, int(line.split()[1]))
        writer.wait()
    return acked_max


def test_sigkilled_writer_never_loses_an_acknowledged_record(tmp_path):
    trials = int(os.environ.get("AGENTPERP_CRASH_TRIALS", TRIALS_DEFAULT))
    seed = int(os.environ.get("AGENTPERP_CRASH_SEED", "20240603"))
    rng = random.Random(seed)
    directory = tmp_path / "journal"
    acked_max = 0
    torn_tails_seen = 0
    for trial in range(trials):
        acked_max = run_trial(directory, rng, acked_max)
        journal = Journal.open(directory, segment_size_bytes_max=SEGMENT_BYTES)
        torn_tails_seen += journal.recovery.truncated_bytes > 0
        journal.close()
        context = f"seed {seed} trial {trial}"
        assert journal.last_cmd_id >= acked_max, context
        assert_intact(list(JournalReader(directory).read(1)), acked_max)
    # After all the kills, the journal still takes appends and reads back whole.
    journal = Journal.open(directory, segment_size_bytes_max=SEGMENT_BYTES)
    journal.append_batch(Records(journal.last_cmd_id, journal.last_seq).batch(10))
    last = journal.last_cmd_id
    journal.close()
    assert_intact(list(JournalReader(directory).read(1)), last)
    assert len(list_segments(directory)) > 1, "the trials should have rolled segments"
    print(f"crash trials: {trials}, acked {acked_max} records, torn tails cut: {torn_tails_seen}")
