"""Seeded engine sessions written to a real journal: the data of the journal and recovery
benchmarks and of the recovery and crash tests."""

from __future__ import annotations

from pathlib import Path

from engine.core import execute
from engine.markets import EngineConfig
from engine.state import State
from ledger.journal import Journal
from ledger.records import encode_record
from ledger.snapshots import SnapshotWriter


def write_session(data_dir: Path, mix, config: EngineConfig, batch_size: int = 50, snapshot_every: int = 0,
                  on_durable=None) -> State:
    """Execute ``mix`` (``(command, ts_ns)`` pairs) and journal it in batches (group commit)
    under ``data_dir/journal``; snapshot every N commands under ``data_dir/snapshots``.

    ``on_durable(last_cmd_id)`` is called after each batch is durable — the moment the venue
    would acknowledge those commands. Returns the live state.
    """
    state = State(config)
    journal = Journal.open(data_dir / "journal")
    writer = SnapshotWriter(data_dir / "snapshots") if snapshot_every else None
    batch: list[bytes] = []
    snapshot = None
    try:
        for cmd_id, (command, ts_ns) in enumerate(mix, 1):
            seq_before = state.last_seq
            outcome = execute(state, command, ts_ns, cmd_id)
            batch.append(encode_record(cmd_id, ts_ns, command, outcome, seq_before))
            if writer and snapshot is None and cmd_id % snapshot_every == 0:
                snapshot = writer.copy(state, cmd_id, batch[-1])  # the copy now, as the venue does
            if len(batch) == batch_size or cmd_id == len(mix):
                journal.append_batch(batch)
                batch = []
                if snapshot is not None:  # written only once its batch is durable
                    writer.submit(snapshot)
                    snapshot = None
                if on_durable:
                    on_durable(cmd_id)
    finally:
        if writer:
            writer.close()
        journal.close()
    return state


def execute_fresh(mix, n_commands: int, config: EngineConfig) -> State:
    """Execute the first ``n_commands`` of ``mix`` into a fresh state (no journal)."""
    state = State(config)
    for cmd_id, (command, ts_ns) in enumerate(mix[:n_commands], 1):
        execute(state, command, ts_ns, cmd_id)
    return state
