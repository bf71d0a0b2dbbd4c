"""A snapshot never holds state that did not reach the disk (DESIGN §7).

A real process runs the venue's sequencer and snapshot writer; its disk stops before the
batch holding a due snapshot is written, and it is SIGKILLed there (``snapshot_crash_writer``).
Restart 1 must rebuild exactly what is on disk, with no snapshot ahead of the journal left;
then the venue writes another history at the same seqs; restart 2 must rebuild exactly that
(a snapshot of the lost batch, were there one, would now look valid by its seq alone).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from engine import commands as c
from engine.core import execute
from engine.invariants import check
from engine.state import State, state_hash
from ledger import snapshots
from ledger.records import encode_record
from ledger.recovery import JOURNAL_DIR, SNAPSHOT_DIR, recover, replay_into
from tests.recovery import session
from tests.recovery.snapshot_crash_writer import DURABLE, SNAPSHOT_EVERY, STALLED

ROOT = Path(__file__).resolve().parents[2]
USDC = 1_000_000
WRITER_TIMEOUT_S = 120


def _kill_at_the_stall(data_dir: Path) -> int:
    """Run the writer until its disk stalls, SIGKILL it; the last durable cmd_id it saw."""
    writer = subprocess.Popen([sys.executable, "-m", "tests.recovery.snapshot_crash_writer", str(data_dir)],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True)
    watchdog = threading.Timer(WRITER_TIMEOUT_S, writer.kill)  # a hung writer fails the test, never hangs it
    watchdog.start()
    try:
        line = writer.stdout.readline()  # blocks until the writer reports the stall (or dies)
    finally:
        watchdog.cancel()
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        writer.stdout.close()
    assert line.startswith("stalled "), f"the writer did not reach the stall: {line!r}"
    return int(line.split()[1])


def _on_disk(data_dir: Path) -> State:
    """The replay of exactly what the journal holds, from seq 1, no snapshot."""
    state = State(session.CONFIG)
    replay_into(state, data_dir / JOURNAL_DIR)
    return state


def _snapshot_seqs(data_dir: Path) -> list[int]:
    return sorted(int(p.stem) for p in snapshots.list_snapshots(data_dir / SNAPSHOT_DIR))


@pytest.mark.slow
def test_a_batch_that_never_reached_the_disk_has_no_snapshot_restart_twice(tmp_path):
    durable_cmd_id = _kill_at_the_stall(tmp_path)
    assert durable_cmd_id == 1 + DURABLE  # the genesis and phase 1; nothing of the stalled batch

    first = recover(tmp_path, session.CONFIG)
    try:
        journal = first.journal
        assert journal.last_cmd_id == durable_cmd_id
        assert all(seq <= journal.last_seq for seq in _snapshot_seqs(tmp_path)), "a snapshot ahead of the journal"
        assert state_hash(first.state) == state_hash(_on_disk(tmp_path))
        assert first.snapshot_seq > 0  # phase 1's snapshots are durable and used
        # The venue goes on: another history at the seqs the stalled batch would have taken.
        state, payloads = first.state, []
        for i in range(2 * STALLED):
            cmd_id = journal.last_cmd_id + len(payloads) + 1
            seq_before = state.last_seq
            command = c.Deposit(f"other{i % 3}", 7 * USDC, f"other-{i}")
            payloads.append(encode_record(cmd_id, 2_000_000_000_000_000_000 + i, command,
                                          execute(state, command, 2_000_000_000_000_000_000 + i, cmd_id), seq_before))
        journal.append_batch(payloads)
        assert journal.last_cmd_id > DURABLE + SNAPSHOT_EVERY  # past where the lost snapshot would sit
    finally:
        first.journal.close()

    second = recover(tmp_path, session.CONFIG)
    try:
        assert state_hash(second.state) == state_hash(_on_disk(tmp_path))
        check(second.state)
    finally:
        second.journal.close()
