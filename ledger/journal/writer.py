"""Writing a journal: ``Journal``, the single writer of a directory (flock), its group
commit (``append_batch``), its fsync policy, and the recovery of its storage on open (a torn
tail cut, any other damage refused). ``FileOps`` is every file-system call it makes: the
seam tests inject faults through."""

from __future__ import annotations

import bisect
import enum
import errno
import fcntl
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec
import numpy as np

from ledger import codec
from ledger.codec import HEADER_SIZE_BYTES, RecordHeader, decode_header
from ledger.journal.errors import JournalError, JournalFailed, JournalLocked
from ledger.journal.index import INDEX_STRIDE_BYTES_DEFAULT, SparseIndex, write_index_file
from ledger.journal.reader import JournalReader, SegmentEnd
from ledger.journal.segments import (LOCK_NAME, SEGMENT_SIZE_BYTES_DEFAULT, SEGMENT_SIZE_BYTES_MAX,
                                     SEGMENT_SIZE_BYTES_MIN, Segment, list_segments, segment_name)

log = logging.getLogger("agentperp.ledger.journal")

# Batches of at least this many records are framed by the numba kernel (see ledger.codec).
KERNEL_BATCH_RECORDS_MIN = 64


class FsyncPolicy(enum.StrEnum):
    """When the writer forces data to the disk.

    - `always`: every frame is written and synced on its own before the next one, so a
      crash loses at most the frame being written (slow: one sync per record);
    - `batch` (default): the whole batch is written, then synced once (group commit);
    - `none`: never synced — survives a process crash (the page cache does), not a power
      loss or a kernel crash. For benchmarks and throwaway runs.
    """

    ALWAYS = "always"
    BATCH = "batch"
    NONE = "none"


class FileOps:
    """The file-system calls the writer makes. Tests substitute it to inject faults."""

    def open(self, path: str, flags: int, mode: int = 0o644) -> int:
        return os.open(path, flags, mode)

    def write(self, fd: int, data: memoryview) -> int:
        return os.write(fd, data)

    def fsync(self, fd: int) -> None:
        # fdatasync flushes the data and the metadata needed to read it back (the size);
        # the timestamps it skips do not matter to us.
        os.fdatasync(fd)

    def fsync_dir(self, path: str) -> None:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def ftruncate(self, fd: int, size_bytes: int) -> None:
        os.ftruncate(fd, size_bytes)

    def close(self, fd: int) -> None:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What opening the journal found on disk.

    `last_cmd_id` / `last_seq` are 0 for an empty journal. When a torn tail was cut,
    `truncated_bytes > 0` and `truncated_segment` / `truncated_offset` / `truncated_reason`
    say where and why.
    """

    directory: Path
    segments_count: int
    last_cmd_id: int
    last_seq: int
    truncated_bytes: int = 0
    truncated_segment: Path | None = None
    truncated_offset: int = 0
    truncated_reason: str = ""


class Journal:
    """The single writer of a journal directory. Open with `Journal.open`."""

    def __init__(self, directory: Path, fsync_policy: FsyncPolicy, segment_size_bytes_max: int,
                 index_stride_bytes: int, ops: FileOps) -> None:
        self.directory = directory
        self.fsync_policy = fsync_policy
        self.segment_size_bytes_max = segment_size_bytes_max
        self.index_stride_bytes = index_stride_bytes
        self._ops = ops
        self._lock_fd = -1
        self._fd = -1
        self._segment: Segment | None = None
        self._segment_size_bytes = 0
        self._index: SparseIndex | None = None
        self._last_cmd_id = 0
        self._last_seq = 0
        self._failed: JournalFailed | None = None
        self._closed = False
        self._appended = threading.Condition()
        self.recovery: RecoveryReport | None = None

    @classmethod
    def open(cls, directory: Path | str, *, fsync_policy: FsyncPolicy | str = FsyncPolicy.BATCH,
             segment_size_bytes_max: int = SEGMENT_SIZE_BYTES_DEFAULT,
             index_stride_bytes: int = INDEX_STRIDE_BYTES_DEFAULT,
             ops: FileOps | None = None) -> Journal:
        """Open (creating if needed) and recover `directory` for writing.

        Cuts a torn tail off the last segment (logged as a warning, reported in
        `journal.recovery`); raises JournalCorrupt for any other damage it sees, and
        JournalLocked if another writer has the directory.
        """
        if not SEGMENT_SIZE_BYTES_MIN <= segment_size_bytes_max <= SEGMENT_SIZE_BYTES_MAX:
            raise ValueError(f"segment_size_bytes_max {segment_size_bytes_max} outside "
                             f"[{SEGMENT_SIZE_BYTES_MIN}, {SEGMENT_SIZE_BYTES_MAX}]")
        journal = cls(Path(directory), FsyncPolicy(fsync_policy), segment_size_bytes_max,
                      index_stride_bytes, ops or FileOps())
        try:
            journal._lock()
            journal._recover()
        except BaseException:
            journal._release()
            raise
        return journal

    # -- state --------------------------------------------------------------------------

    @property
    def last_cmd_id(self) -> int:
        """The cmd_id of the last durable record (0 if none)."""
        return self._last_cmd_id

    @property
    def last_seq(self) -> int:
        """The last durable event seq (0 if none)."""
        return self._last_seq

    @property
    def failed(self) -> JournalFailed | None:
        """The error that stopped the journal, or None while it is healthy."""
        return self._failed

    # -- append -------------------------------------------------------------------------

    def append_batch(self, payloads: list[bytes]) -> None:
        """Write `payloads` as consecutive records and make them durable (group commit).

        Returns only once the batch is durable under the fsync policy. Raises ValueError
        (nothing written, journal still healthy) if the batch breaks the payload contract
        or does not fit in one segment; raises JournalFailed on any I/O error, after which
        every call raises it.
        """
        if self._failed is not None:
            raise self._failed
        if self._closed:
            raise JournalError("journal is closed")
        if not payloads:
            return
        buffer, framed = self._frame(payloads)
        if len(buffer) > self.segment_size_bytes_max:
            raise ValueError(f"batch of {len(buffer)} bytes exceeds segment_size_bytes_max "
                             f"{self.segment_size_bytes_max}: split it")
        try:
            if self._segment_size_bytes + len(buffer) > self.segment_size_bytes_max:
                self._roll()
            self._write_batch(buffer, payloads)
        except OSError as exc:
            self._fail(exc)
        self._commit(*framed)

    def _frame(self, payloads: list[bytes]) -> tuple[memoryview | bytes, tuple]:
        """Check the batch against the contract and frame it.

        Return the frames and `(frame_ends, cmd_ids, first_seqs, last_seq)`, frame ends
        relative to the batch start. Raise ValueError if the batch breaks the contract.
        """
        loaded = codec.frame_kernel() if len(payloads) >= KERNEL_BATCH_RECORDS_MIN else None
        if loaded is not None:
            records_count = len(payloads)
            joined = b"".join(payloads)
            lengths = np.fromiter(map(len, payloads), np.int64, records_count)
            frames = np.empty(len(joined) + HEADER_SIZE_BYTES * records_count, np.uint8)
            meta = np.empty((4, records_count), np.int64)
            framed = loaded[1](np.frombuffer(joined, np.uint8), lengths, loaded[2],
                               self._last_cmd_id + 1, self._last_seq + 1, frames, meta)
            if framed == records_count:
                # The rows as arrays: _commit reads a few of their values (no Python int per record).
                ends, cmd_ids, first_seqs, last_seqs = meta
                return memoryview(frames), (ends, cmd_ids, first_seqs, int(last_seqs[-1]))
            # Something unusual about payload [framed]: the reference path says what.
        headers = self._check_batch(payloads)
        ends, end = [], 0
        for payload in payloads:
            end += HEADER_SIZE_BYTES + len(payload)
            ends.append(end)
        return codec.encode_frames(payloads), (
            ends, [h.cmd_id for h in headers], [h.first_seq for h in headers], headers[-1].last_seq)

    def _check_batch(self, payloads: list[bytes]) -> list[RecordHeader]:
        cmd_id = self._last_cmd_id + 1
        seq = self._last_seq + 1
        headers = []
        for payload in payloads:
            try:
                header = decode_header(payload)
            except msgspec.DecodeError as exc:
                raise ValueError(f"payload is not a record [cmd_id, first_seq, last_seq, ...]: "
                                 f"{exc}") from None
            if header.cmd_id != cmd_id or header.first_seq != seq or header.last_seq < seq - 1:
                raise ValueError(
                    f"record cmd_id {header.cmd_id} seqs {header.first_seq}..{header.last_seq}"
                    f" does not follow cmd_id {cmd_id - 1} / seq {seq - 1}")
            headers.append(header)
            cmd_id += 1
            seq = header.last_seq + 1
        return headers

    def _write_batch(self, buffer: bytes, payloads: list[bytes]) -> None:
        if self.fsync_policy is FsyncPolicy.ALWAYS:
            view = memoryview(buffer)
            start = 0
            for payload in payloads:
                end = start + HEADER_SIZE_BYTES + len(payload)
                self._write_all(view[start:end])
                self._ops.fsync(self._fd)
                start = end
            return
        self._write_all(memoryview(buffer))
        if self.fsync_policy is FsyncPolicy.BATCH:
            self._ops.fsync(self._fd)

    def _write_all(self, view: memoryview) -> None:
        while view:
            written = self._ops.write(self._fd, view)
            if written <= 0:
                raise OSError(errno.EIO, "write returned no progress")
            view = view[written:]

    def _commit(self, frame_ends: Sequence[int], cmd_ids: Sequence[int], first_seqs: Sequence[int],
                last_seq: int) -> None:
        """The batch is durable: index it and move the journal's end. The columns are lists or
        int64 arrays (the frame kernel's), read only where an index entry falls (hence int())."""
        index = self._index
        base = self._segment_size_bytes
        # Index entries fall every stride_bytes: find each by bisection, not per record.
        due = index._last_entry_offset + index.stride_bytes - base
        while True:
            i = bisect.bisect_left(frame_ends, due) + 1  # the first frame starting >= due
            if due <= 0:
                i = 0
            if i >= len(frame_ends):
                break
            start = base + int(frame_ends[i - 1]) if i else base
            index.entries.append((int(first_seqs[i]), int(cmd_ids[i]), start))
            index._last_entry_offset = start
            due = start + index.stride_bytes - base
        end = base + int(frame_ends[-1])
        last_cmd_id = int(cmd_ids[-1])
        index.covered_bytes = end
        index.next_cmd_id, index.next_seq = last_cmd_id + 1, last_seq + 1
        with self._appended:
            self._segment_size_bytes = end
            self._last_cmd_id = last_cmd_id
            self._last_seq = last_seq
            self._appended.notify_all()

    def _fail(self, exc: OSError) -> None:
        name = errno.errorcode.get(exc.errno or 0, "OSError")
        where = self._segment.path if self._segment else self.directory
        self._failed = JournalFailed(
            f"journal write failed ({name}: {exc}) in {where}; "
            f"the journal is stopped: nothing after cmd_id {self._last_cmd_id} "
            f"(seq {self._last_seq}) is durable. Fix the disk and restart; recovery rebuilds "
            f"from what is on disk.")
        self._rollback()
        with self._appended:
            self._appended.notify_all()
        raise self._failed from exc

    def _rollback(self) -> None:
        # Best effort: cut what the failed batch may have left so that a restart does not
        # replay commands nobody was told about. If this fails too, recovery may find some
        # of them; they were never acknowledged (idempotent client ids cover a retry).
        if self._fd < 0:
            return
        try:
            self._ops.ftruncate(self._fd, self._segment_size_bytes)
            if self.fsync_policy is not FsyncPolicy.NONE:
                self._ops.fsync(self._fd)
        except OSError as exc:
            log.error("journal rollback of %s to %d bytes failed: %s",
                      self._segment.path, self._segment_size_bytes, exc)

    # -- segments -----------------------------------------------------------------------

    def _roll(self) -> None:
        """Close the full segment and start the next one (its name is the next record)."""
        closed_segment, closed_index = self._segment, self._index
        self._ops.close(self._fd)
        self._fd = -1
        # The closed segment is already durable: every batch was synced before returning.
        write_index_file(closed_segment, closed_index)
        self._create_segment(self._last_cmd_id + 1, self._last_seq + 1)

    def _create_segment(self, first_cmd_id: int, first_seq: int) -> None:
        path = self.directory / segment_name(first_cmd_id, first_seq)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        self._segment = Segment(first_cmd_id, first_seq, path)
        self._segment_size_bytes = 0
        self._index = SparseIndex(first_cmd_id, first_seq, self.index_stride_bytes)
        self._fd = self._ops.open(str(path), flags)
        if self.fsync_policy is not FsyncPolicy.NONE:
            # The new name must survive a crash, or its records would vanish with it.
            self._ops.fsync_dir(str(self.directory))

    def _open_segment(self, segment: Segment, size_bytes: int, index: SparseIndex) -> None:
        self._segment = segment
        self._segment_size_bytes = size_bytes
        self._index = index
        self._fd = self._ops.open(str(segment.path), os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)

    # -- recovery -----------------------------------------------------------------------

    def _lock(self) -> None:
        created = not self.directory.exists()
        self.directory.mkdir(parents=True, exist_ok=True)
        if created:
            self._ops.fsync_dir(str(self.directory.parent))
        self._lock_fd = os.open(self.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                                0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise JournalLocked(f"another writer holds {self.directory}") from None

    def _recover(self) -> None:
        segments = list_segments(self.directory)
        if not segments:
            self._create_segment(1, 1)
            self.recovery = RecoveryReport(self.directory, 1, 0, 0)
            return
        last = segments[-1]
        reader = JournalReader(self.directory, index_stride_bytes=self.index_stride_bytes)
        end = reader.segment_end(last)
        self._open_segment(last, end.valid_bytes, reader._index(last))
        if end.torn_bytes:
            self._truncate_tail(end)
        self._last_cmd_id = end.last_cmd_id
        self._last_seq = end.last_seq
        self.recovery = RecoveryReport(
            self.directory, len(segments), end.last_cmd_id, end.last_seq, end.torn_bytes,
            last.path if end.torn_bytes else None, end.valid_bytes if end.torn_bytes else 0,
            end.tail_reason)

    def _truncate_tail(self, end: SegmentEnd) -> None:
        log.warning("journal recovery: torn tail in %s at offset %d (%s): dropping %d bytes",
                    end.segment.path, end.valid_bytes, end.tail_reason, end.torn_bytes)
        self._ops.ftruncate(self._fd, end.valid_bytes)
        self._ops.fsync(self._fd)

    # -- readers and shutdown -----------------------------------------------------------

    def reader(self) -> JournalReader:
        """Return a reader of this journal's directory (sees written, maybe unsynced data)."""
        return JournalReader(self.directory, index_stride_bytes=self.index_stride_bytes)

    def follow(self, from_seq: int = 1, *, stop: threading.Event | None = None,
               poll_interval_s: float = 0.05) -> Iterator[tuple[RecordHeader, bytes]]:
        """Yield durable records from `from_seq` on, woken by each append, until `stop`."""
        seen = [0]  # the watermark the reader last drained up to

        def cmd_id_max() -> int:
            seen[0] = self._last_cmd_id
            return seen[0]

        def wait(timeout_s: float) -> None:
            # Sleep only if nothing was appended since the drain: no lost wake-up.
            with self._appended:
                if self._last_cmd_id == seen[0] and self._failed is None and not self._closed:
                    self._appended.wait(timeout_s)

        return self.reader().follow(from_seq, stop=stop, poll_interval_s=poll_interval_s,
                                    cmd_id_max=cmd_id_max, wait=wait)

    def close(self) -> None:
        """Close the files and release the directory lock. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._fd >= 0:
            try:
                self._ops.close(self._fd)
            except OSError as exc:
                log.warning("closing %s: %s", self._segment.path, exc)
            self._fd = -1
        self._release()
        with self._appended:
            self._appended.notify_all()

    def _release(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
