"""Recovery: the only way the venue starts (DESIGN §7).

Open the journal (which cuts a torn tail and refuses corruption elsewhere); start a new
journal with its genesis record, or check that the configuration is the one the journal's
genesis carries (``ledger.genesis``: a change is refused, field by field); load the newest
snapshot that checks out and is not ahead of the journal, then apply the journal's events
after it — verifying every Checkpoint hash on the way. A snapshot that fails validation is
reported and the next older one (or a full replay) is used instead.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from engine.apply import apply
from engine.events import Checkpoint
from engine.markets import EngineConfig
from engine.state import State, state_hash
from ledger import snapshots
from ledger.files import fsync_dir
from ledger.genesis import check_unchanged, read_genesis, write_genesis
from ledger.journal import FileOps, Journal, JournalReader, RecoveryReport
from ledger.records import Genesis, decode_record

log = logging.getLogger(__name__)

JOURNAL_DIR = "journal"
SNAPSHOT_DIR = "snapshots"


class RecoveryFailed(Exception):
    """The journal does not rebuild a consistent state; start-up must stop."""


@dataclass
class Recovered:
    state: State
    journal: Journal
    snapshot_seq: int  # 0: full replay
    records_replayed: int
    journal_report: RecoveryReport | None
    skipped_snapshots: list[str] = field(default_factory=list)
    genesis: Genesis | None = None  # None: a journal written before genesis records


def recover(data_dir: Path | str, config: EngineConfig, *, fsync_policy: str = "batch",
            use_snapshots: bool = True, genesis_ts_ns: int | None = None,
            ops: FileOps | None = None) -> Recovered:
    """Rebuild the state from ``data_dir`` and return it with the journal open for writing.

    An empty journal gets its genesis record first (``config``, stamped ``genesis_ts_ns``,
    default now). A journal that has one must have been written with ``config``: else
    ``ledger.genesis.ConfigChanged`` lists every difference and nothing is written.
    ``ops`` are the journal's file calls (tests inject faults through them).
    """
    data_dir = Path(data_dir)
    journal = Journal.open(data_dir / JOURNAL_DIR, fsync_policy=fsync_policy, ops=ops)
    try:
        genesis = _genesis(journal, config, genesis_ts_ns)
        state, snapshot_seq, skipped = _start_state(data_dir / SNAPSHOT_DIR, config, journal, genesis, use_snapshots)
        replayed = replay_into(state, data_dir / JOURNAL_DIR)
        if state.last_seq != journal.last_seq:
            raise RecoveryFailed(f"replay ended at seq {state.last_seq}, the journal at {journal.last_seq}")
    except BaseException:
        journal.close()
        raise
    return Recovered(state, journal, snapshot_seq, replayed, journal.recovery, skipped, genesis)


def _genesis(journal: Journal, config: EngineConfig, ts_ns: int | None) -> Genesis | None:
    if journal.last_cmd_id == 0:
        return write_genesis(journal, config, time.time_ns() if ts_ns is None else ts_ns)
    genesis = read_genesis(journal.directory)
    if genesis is None:
        log.warning("journal %s has no genesis record (written before journals carried their "
                    "configuration): it is replayed with the venue's configuration, which must be "
                    "the one it was written with", journal.directory)
        return None
    check_unchanged(journal.directory, genesis, config)
    return genesis


def _start_state(snapshot_dir: Path, config: EngineConfig, journal: Journal, genesis: Genesis | None,
                 use_snapshots: bool) -> tuple[State, int, list[str]]:
    """The newest snapshot that checks out and belongs to ``journal``, else a fresh state.

    A snapshot ahead of the journal is deleted: its batch never became durable, and the
    venue is about to write other records at those seqs. One that does not prove it belongs
    to this journal (``SnapshotMeta.journal_id`` / ``record_digest``) is ignored, with a log line.
    """
    skipped: list[str] = []
    for path in snapshots.list_snapshots(snapshot_dir) if use_snapshots else []:
        try:
            meta = snapshots.read_meta(path)
        except snapshots.SnapshotInvalid as error:
            _skip(skipped, str(error))
            continue
        if meta.seq > journal.last_seq or meta.cmd_id > journal.last_cmd_id:
            _remove_ahead(path, meta, journal, skipped)
            continue
        state = _proven_state(path, meta, config, journal.directory, genesis, skipped)
        if state is not None:
            return state, meta.seq, skipped
    return State(config), 0, skipped


def snapshot_within(snapshot_dir: Path, config: EngineConfig, journal_dir: Path, genesis: Genesis | None,
                    after_seq: int, to_seq: int) -> State | None:
    """The state of the newest snapshot taken after ``after_seq`` and at most at ``to_seq``
    that checks out and belongs to the journal in ``journal_dir``; None if there is none.
    (A replica far behind its journal starts from it: the replay left is bounded by the
    venue's ``snapshot_every_commands``.)"""
    skipped: list[str] = []
    for path in snapshots.list_snapshots(snapshot_dir):
        try:
            meta = snapshots.read_meta(path)
        except snapshots.SnapshotInvalid as error:
            _skip(skipped, str(error))
            continue
        if after_seq < meta.seq <= to_seq:
            state = _proven_state(path, meta, config, journal_dir, genesis, skipped)
            if state is not None:
                return state
    return None


def _proven_state(path: Path, meta: snapshots.SnapshotMeta, config: EngineConfig, journal_dir: Path,
                  genesis: Genesis | None, skipped: list[str]) -> State | None:
    """The snapshot's state if it belongs to the journal and checks out, else None (and why, in ``skipped``)."""
    problem = proof_problem(meta, journal_dir, genesis)
    if problem is not None:
        _skip(skipped, f"{path}: {problem}")
        return None
    try:
        return snapshots.load_snapshot(path, config)[0]
    except snapshots.SnapshotInvalid as error:
        _skip(skipped, str(error))
        return None


def _skip(skipped: list[str], reason: str) -> None:
    log.warning("ignoring snapshot: %s", reason)
    skipped.append(reason)


def _remove_ahead(path: Path, meta: snapshots.SnapshotMeta, journal: Journal, skipped: list[str]) -> None:
    reason = (f"{path}: at seq {meta.seq} (cmd_id {meta.cmd_id}), beyond the journal's last seq "
              f"{journal.last_seq} (cmd_id {journal.last_cmd_id}): a history that never became durable; deleted")
    log.warning("removing snapshot: %s", reason)
    path.unlink(missing_ok=True)
    fsync_dir(path.parent)
    skipped.append(reason)


def proof_problem(meta: snapshots.SnapshotMeta, journal_dir: Path, genesis: Genesis | None) -> str | None:
    """Why the snapshot ``meta`` does not belong to the journal in ``journal_dir`` (None: it does)."""
    if not meta.record_digest:
        return "it carries no proof of the journal it belongs to (written before snapshots carried one)"
    journal_id = genesis.journal_id if genesis is not None else ""
    if meta.journal_id != journal_id:
        return (f"it belongs to journal {meta.journal_id or '(without genesis)'}, "
                f"not to {journal_id or 'this journal (without genesis)'}")
    # The records holding seq meta.seq as their last: the one at meta.cmd_id is among them.
    for header, payload in JournalReader(journal_dir).read(from_seq=meta.seq):
        if header.cmd_id < meta.cmd_id:
            continue
        if header.cmd_id > meta.cmd_id or header.last_seq != meta.seq:
            break
        if snapshots.record_digest(payload) != meta.record_digest:
            return (f"the journal's record cmd_id {meta.cmd_id} is not the one it was taken after "
                    f"(another history was written at those seqs)")
        return None
    return f"the journal has no record cmd_id {meta.cmd_id} ending at seq {meta.seq}"


def replay_into(state: State, journal_dir: Path | str, *, verify_checkpoints: bool = True,
                to_seq: int | None = None) -> int:
    """Apply every journaled event after ``state.last_seq`` (up to ``to_seq``, if given);
    returns the records read."""
    records = 0
    for header, payload in JournalReader(journal_dir).read(from_seq=state.last_seq + 1):
        if header.last_seq <= state.last_seq:
            continue  # a record without events at the seam
        if to_seq is not None and header.first_seq > to_seq:
            break
        record = decode_record(payload)
        records += 1
        for event in record.events:
            if to_seq is not None and event.seq > to_seq:
                return records
            if verify_checkpoints and type(event) is Checkpoint and state_hash(state) != event.state_hash:
                raise RecoveryFailed(f"state hash differs from the journal's checkpoint at seq {event.seq} "
                                     f"(cmd_id {record.cmd_id}): the engine no longer rebuilds this journal")
            apply(state, event)
    return records
