"""Crash test with real processes: a writer running the engine into a real journal is
SIGKILLed at seeded random moments. After recovery, every acknowledged command is
present, the state equals a clean execution of exactly what is present, the invariants
hold, and the venue can go on appending.

``AGENTPERP_CRASH_TRIALS`` sets the number of trials (default 50).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from engine.core import execute
from engine.invariants import check
from engine.state import state_hash
from ledger.records import encode_record
from ledger.recovery import recover
from tests.recovery import session

TRIALS = int(os.environ.get("AGENTPERP_CRASH_TRIALS", "50"))
ROUNDS = 300
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def mix():
    return session.commands(ROUNDS)


def _run_and_kill(data_dir: Path, rng: random.Random) -> int:
    """Start the writer, SIGKILL it after a random number of acks; the last ack seen."""
    writer = subprocess.Popen([sys.executable, "-m", "tests.recovery.crash_writer", str(data_dir), str(ROUNDS)],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True)
    kill_after_acks = rng.randint(1, 90)
    last_ack = 0
    try:
        for acks, line in enumerate(writer.stdout, 1):
            if line.strip() == "done":
                break
            last_ack = int(line)
            if acks >= kill_after_acks:
                break
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        writer.stdout.close()
    return last_ack


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(TRIALS))
def test_no_acknowledged_command_is_lost(tmp_path, mix, trial):
    rng = random.Random(1_000 + trial)
    last_ack = _run_and_kill(tmp_path, rng)
    recovered = recover(tmp_path, session.CONFIG)
    try:
        present = recovered.journal.last_cmd_id
        assert present >= last_ack, f"acknowledged cmd {last_ack} lost; journal ends at {present}"
        assert state_hash(recovered.state) == state_hash(session.replay_fresh(mix, present))
        check(recovered.state)
        # The venue goes on: the next command appends after what is present.
        if present < len(mix):
            command, ts_ns = mix[present]
            seq_before = recovered.state.last_seq
            outcome = execute(recovered.state, command, ts_ns, present + 1)
            recovered.journal.append_batch([encode_record(present + 1, ts_ns, command, outcome, seq_before)])
            assert recovered.journal.last_cmd_id == present + 1
    finally:
        recovered.journal.close()
