"""Snapshots: the state at a seq, written in the background from a consistent copy.

A file ``{seq:020d}.snap`` is ``MAGIC | u64 payload length | u32 crc32c | payload`` where the
payload is msgpack ``[meta, state]``; ``meta`` holds the seq, the cmd_id and the state hash.
Files are written to a temporary name, fsynced and renamed, so a crash leaves either the
whole snapshot or none. Loading re-hashes the rebuilt state and refuses a mismatch.
The journal stays the source of truth: any snapshot can be deleted and rebuilt.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import crc32c
import msgspec

from engine.markets import EngineConfig
from engine.state import State, export_state, import_state, state_hash

log = logging.getLogger(__name__)

MAGIC = b"APSNAP01"
HEADER = struct.Struct("<QI")
SUFFIX = ".snap"
KEEP_DEFAULT = 3  # snapshots kept; older ones are deleted after a new one is durable


class SnapshotInvalid(Exception):
    """A snapshot file that cannot be trusted (damaged, foreign, or hash mismatch)."""


class SnapshotMeta(msgspec.Struct, frozen=True, array_like=True):
    seq: int
    cmd_id: int
    state_hash: str


def snapshot_path(directory: Path, seq: int) -> Path:
    return directory / f"{seq:020d}{SUFFIX}"


def list_snapshots(directory: Path | str) -> list[Path]:
    """Snapshot files, newest (highest seq) first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted((p for p in directory.iterdir() if p.suffix == SUFFIX and p.stem.isdigit()), reverse=True)


def write_snapshot(directory: Path | str, exported: dict, cmd_id: int, config: EngineConfig) -> Path:
    """Hash the exported state, encode it and write it durably; returns the file's path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    meta = SnapshotMeta(exported["scalars"]["last_seq"], cmd_id, state_hash(import_state(config, exported)))
    payload = msgspec.msgpack.encode([meta, exported])
    path = snapshot_path(directory, meta.seq)
    temporary = path.with_suffix(".tmp")
    with open(temporary, "wb") as file:
        file.write(MAGIC + HEADER.pack(len(payload), crc32c.crc32c(payload)))
        file.write(payload)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    _fsync_dir(directory)
    return path


def load_snapshot(path: Path | str, config: EngineConfig) -> tuple[State, SnapshotMeta]:
    """Read, check and rebuild one snapshot; raise ``SnapshotInvalid`` saying why not."""
    path = Path(path)
    data = path.read_bytes()
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + HEADER.size:
        raise SnapshotInvalid(f"{path}: not a snapshot file")
    length, crc = HEADER.unpack_from(data, len(MAGIC))
    payload = data[len(MAGIC) + HEADER.size:]
    if len(payload) != length or crc32c.crc32c(payload) != crc:
        raise SnapshotInvalid(f"{path}: length or crc32c does not check out (damaged or partly written)")
    try:
        raw_meta, exported = msgspec.msgpack.decode(payload)
        meta = msgspec.convert(raw_meta, SnapshotMeta)
        state = import_state(config, exported)
    except (msgspec.DecodeError, msgspec.ValidationError, KeyError, ValueError, TypeError) as error:
        raise SnapshotInvalid(f"{path}: cannot be decoded: {error}") from error
    if state.last_seq != meta.seq or state_hash(state) != meta.state_hash:
        raise SnapshotInvalid(f"{path}: the rebuilt state does not match the recorded seq/hash")
    return state, meta


def prune(directory: Path | str, keep: int = KEEP_DEFAULT) -> list[Path]:
    """Delete all but the ``keep`` newest snapshots; returns what was deleted."""
    old = list_snapshots(directory)[keep:]
    for path in old:
        path.unlink(missing_ok=True)
    return old


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SnapshotWriter:
    """Takes consistent copies on the caller's thread and writes them on one background
    thread, one at a time; a request while one is being written is skipped (the next will
    come), so snapshots never queue up behind a slow disk."""

    def __init__(self, directory: Path | str, keep: int = KEEP_DEFAULT):
        self.directory = Path(directory)
        self.keep = keep
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="snapshot")
        self._pending: Future | None = None
        self._lock = threading.Lock()

    def request(self, state: State, cmd_id: int) -> Future | None:
        """Copy ``state`` now and write it in the background; None if one is in flight."""
        with self._lock:
            if self._pending is not None and not self._pending.done():
                return None
            exported = export_state(state)  # the consistent copy, between two commands
            self._pending = self._pool.submit(self._write, exported, cmd_id, state.config)
            return self._pending

    def _write(self, exported: dict, cmd_id: int, config: EngineConfig) -> Path:
        path = write_snapshot(self.directory, exported, cmd_id, config)
        prune(self.directory, self.keep)
        log.info("snapshot at seq %d written to %s", exported["scalars"]["last_seq"], path)
        return path

    def close(self) -> None:
        """Wait for the snapshot in flight, then stop the thread."""
        self._pool.shutdown(wait=True)
