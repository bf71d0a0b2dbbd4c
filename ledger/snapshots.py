"""Snapshots: the durable state at a seq, with proof of the journal it belongs to.

A file ``{seq:020d}.snap`` is ``MAGIC | u64 payload length | u32 crc32c | payload`` where the
payload is msgpack ``[meta, state]``; ``meta`` (``SnapshotMeta``) holds the seq, the cmd_id,
the state hash and the **proof of its journal**: the ``journal_id`` of the journal's genesis
record ("" for a journal without one) and ``record_digest``, the BLAKE2b-128 of the payload of
the journal record ``cmd_id`` — the last record the snapshot includes. Files are written to a
temporary name, fsynced and renamed, so a crash leaves either the whole snapshot or none.
Loading re-hashes the rebuilt state and refuses a mismatch. The journal stays the source of
truth: any snapshot can be deleted and rebuilt.

**Only durable state is snapshotted** (DESIGN §7). ``SnapshotWriter.copy`` takes the
consistent copy between two commands, when the command is decided; ``submit`` hands it to
the background thread only once the batch holding that command is durable (the sequencer
calls it after the batch's fsync). A batch that never reaches the disk never has a snapshot.

**Why the digest of one record is proof enough.** Recovery (``ledger.recovery``) reads the
record at the snapshot's cmd_id from the journal it replays and compares digests; a
snapshot of another journal (other journal_id), of a history that was cut and rewritten (a
different record at that cmd_id: its stamp ``ts_ns`` alone differs, time never goes back), or
written before proofs existed (empty digest) is refused with a log line, and snapshots
ahead of the journal are deleted. It costs one hash of one record per snapshot and one record
read per start-up, where a hash chain over every record would cost a hash per record on the
hot path and a full scan at every start-up.
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import crc32c
import msgspec

from engine.markets import EngineConfig
from engine.state import State, export_state, import_state, state_hash
from ledger.files import fsync_dir

log = logging.getLogger(__name__)

MAGIC = b"APSNAP01"
HEADER = struct.Struct("<QI")
SUFFIX = ".snap"
KEEP_DEFAULT = 3  # the newest snapshots kept whole, for recovery
# Older snapshots kept besides, spread over the journal (``prune``): where ``replay verify``
# starts stretches it verifies in parallel (replay/verify.py). Each costs a state's size on
# disk (a few MB at thousands of open positions), against ~20 MB of journal per 100 000
# commands between two of them.
SPREAD_KEEP_DEFAULT = 8
RECORD_DIGEST_BYTES = 16


class SnapshotInvalid(Exception):
    """A snapshot file that cannot be trusted (damaged, foreign, or hash mismatch)."""


class SnapshotMeta(msgspec.Struct, frozen=True, array_like=True):
    seq: int
    cmd_id: int
    state_hash: str
    # Proof of the journal it belongs to (appended; "" in snapshots written before it).
    journal_id: str = ""
    record_digest: str = ""


def record_digest(payload: bytes) -> str:
    """The digest of one journal record's payload that a snapshot carries as its proof."""
    return hashlib.blake2b(payload, digest_size=RECORD_DIGEST_BYTES).hexdigest()


@dataclass(frozen=True, slots=True)
class SnapshotCopy:
    """A consistent copy of the state right after ``cmd_id``, waiting for that command's
    batch to be durable; ``digest`` is ``record_digest`` of its journal record."""

    exported: dict
    cmd_id: int
    digest: str
    config: EngineConfig

    @property
    def seq(self) -> int:
        return self.exported["scalars"]["last_seq"]


def snapshot_path(directory: Path, seq: int) -> Path:
    return directory / f"{seq:020d}{SUFFIX}"


def snapshot_seq(path: Path) -> int:
    """The seq a snapshot file's name says it holds (``snapshot_path``'s inverse)."""
    return int(path.stem)


def list_snapshots(directory: Path | str) -> list[Path]:
    """Snapshot files, newest (highest seq) first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted((p for p in directory.iterdir() if p.suffix == SUFFIX and p.stem.isdigit()), reverse=True)


def write_snapshot(directory: Path | str, exported: dict, cmd_id: int, config: EngineConfig, *,
                   journal_id: str = "", digest: str = "") -> Path:
    """Hash the exported state, encode it with its proof and write it durably; its path.

    Call it only for a state whose journal record ``cmd_id`` is durable."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    meta = SnapshotMeta(exported["scalars"]["last_seq"], cmd_id, state_hash(import_state(config, exported)),
                        journal_id, digest)
    payload = msgspec.msgpack.encode([meta, exported])
    path = snapshot_path(directory, meta.seq)
    temporary = path.with_suffix(".tmp")
    with open(temporary, "wb") as file:
        file.write(MAGIC + HEADER.pack(len(payload), crc32c.crc32c(payload)))
        file.write(payload)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    fsync_dir(directory)
    return path


def _read(path: Path) -> tuple[SnapshotMeta, msgspec.Raw]:
    data = path.read_bytes()
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + HEADER.size:
        raise SnapshotInvalid(f"{path}: not a snapshot file")
    length, crc = HEADER.unpack_from(data, len(MAGIC))
    payload = data[len(MAGIC) + HEADER.size:]
    if len(payload) != length or crc32c.crc32c(payload) != crc:
        raise SnapshotInvalid(f"{path}: length or crc32c does not check out (damaged or partly written)")
    try:
        meta, exported = msgspec.msgpack.decode(payload, type=tuple[SnapshotMeta, msgspec.Raw])
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise SnapshotInvalid(f"{path}: cannot be decoded: {error}") from error
    return meta, exported


def read_meta(path: Path | str) -> SnapshotMeta:
    """The meta of one snapshot (crc checked, state not rebuilt); ``SnapshotInvalid`` if not."""
    return _read(Path(path))[0]


def load_snapshot(path: Path | str, config: EngineConfig) -> tuple[State, SnapshotMeta]:
    """Read, check and rebuild one snapshot; raise ``SnapshotInvalid`` saying why not.

    This checks the file against itself; whether it belongs to a journal is
    ``ledger.recovery``'s check (``SnapshotMeta.journal_id`` / ``record_digest``)."""
    path = Path(path)
    meta, raw = _read(path)
    try:
        state = import_state(config, msgspec.msgpack.decode(raw))
    except (msgspec.DecodeError, msgspec.ValidationError, KeyError, ValueError, TypeError) as error:
        raise SnapshotInvalid(f"{path}: cannot be decoded: {error}") from error
    if state.last_seq != meta.seq or state_hash(state) != meta.state_hash:
        raise SnapshotInvalid(f"{path}: the rebuilt state does not match the recorded seq/hash")
    return state, meta


def prune(directory: Path | str, keep: int = KEEP_DEFAULT, spread: int = SPREAD_KEEP_DEFAULT) -> list[Path]:
    """Delete snapshots beyond the ``keep`` newest and ``spread`` older ones; returns what
    was deleted.

    The older ones are thinned evenly: while there are too many, the one whose removal
    leaves the shortest gap (from the snapshot before it, or seq 0, to the one after it) is
    deleted, so that what stays is spread over the journal, however long it grows.
    """
    if keep < 1 or spread < 0:
        raise ValueError(f"prune keeps at least the newest snapshot (keep {keep}, spread {spread})")
    newest_first = list_snapshots(directory)
    older = sorted(newest_first[keep:], key=snapshot_seq)
    deleted: list[Path] = []
    while len(older) > spread:
        seqs = [0] + [snapshot_seq(path) for path in older] + [snapshot_seq(newest_first[keep - 1])]
        merged = [seqs[i + 2] - seqs[i] for i in range(len(older))]
        deleted.append(older.pop(merged.index(min(merged))))
    for path in deleted:
        path.unlink(missing_ok=True)
    return deleted


class SnapshotWriter:
    """Takes consistent copies on the caller's thread and writes them on one background
    thread once their batch is durable.

    Bound: at most ``COPIES_MAX`` (1) snapshot is copied-and-waiting or being written at a
    time; a ``copy`` while one is is skipped (returns None; the next will come), so copies
    never queue up behind a slow disk and the memory held is one exported state."""

    COPIES_MAX = 1

    def __init__(self, directory: Path | str, keep: int = KEEP_DEFAULT, *, spread: int = SPREAD_KEEP_DEFAULT,
                 journal_id: str = ""):
        self.directory = Path(directory)
        self.keep = keep
        self.spread = spread
        self.journal_id = journal_id  # the genesis' journal_id of the journal snapshotted
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="snapshot")
        self._busy = 0  # copies taken and not yet written (or dropped)
        self._writing = 0  # copies submitted and not yet written
        self._idle = threading.Condition()

    def copy(self, state: State, cmd_id: int, payload: bytes) -> SnapshotCopy | None:
        """Copy ``state`` now (right after ``cmd_id``, whose journal record is ``payload``);
        None if a snapshot is already copied or being written. Hand the copy to ``submit``
        once the record is durable, or to ``drop`` if it never will be."""
        with self._idle:
            if self._busy >= self.COPIES_MAX:
                return None
            self._busy += 1
        return SnapshotCopy(export_state(state), cmd_id, record_digest(payload), state.config)

    def submit(self, copy: SnapshotCopy) -> Future:
        """Write ``copy`` in the background. Call only once its journal record is durable."""
        with self._idle:
            self._writing += 1
        return self._pool.submit(self._write, copy)

    def drop(self, copy: SnapshotCopy) -> None:
        """Forget ``copy``: its batch will never be durable."""
        self._done()

    def wait_written(self, timeout_s: float | None = None) -> bool:
        """Wait until every submitted snapshot is written (or failed); False on timeout.
        Copies still waiting for their batch to be durable are not waited for."""
        with self._idle:
            return self._idle.wait_for(lambda: self._writing == 0, timeout_s)

    def _write(self, copy: SnapshotCopy) -> Path:
        try:
            path = write_snapshot(self.directory, copy.exported, copy.cmd_id, copy.config,
                                  journal_id=self.journal_id, digest=copy.digest)
            prune(self.directory, self.keep, self.spread)
            log.info("snapshot at seq %d written to %s", copy.seq, path)
            return path
        except BaseException:
            log.exception("snapshot at seq %d failed (the journal is unaffected)", copy.seq)
            raise
        finally:
            self._done(written=True)

    def _done(self, written: bool = False) -> None:
        with self._idle:
            self._busy -= 1
            self._writing -= written
            self._idle.notify_all()

    def close(self) -> None:
        """Wait for the snapshot in flight, then stop the thread."""
        self._pool.shutdown(wait=True)
