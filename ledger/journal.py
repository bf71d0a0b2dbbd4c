"""The durable journal: segment files of frames, group commit, recovery, readers.

Layout of a journal directory:

    {first_cmd_id:020d}-{first_seq:020d}.seg   frames (see ledger.codec), in cmd_id order
    {segment}.idx                               sparse index of a closed segment (optional,
                                                rebuildable, one codec frame of msgpack)
    .lock                                       flock'ed by the one writer

A segment is named after its first record's cmd_id and first_seq, so a reader finds the
segment holding a seq from the names alone, and an empty last segment (the writer rolled,
then stopped) still says where the journal ends.

The writer (`Journal`) is single-threaded and single-process (flock). `append_batch` is the
group commit: every frame of the batch is written, then synced according to `FsyncPolicy`;
only when it returns is the batch durable. Any OSError stops the journal for good
(`JournalFailed`). Opening a `Journal` is the recovery of the storage: a torn tail of the
last segment is truncated with a warning, any other damage raises `JournalCorrupt`.

Readers (`JournalReader`) may live in other threads or processes: `read(from_seq)` iterates
what is there, `follow(from_seq)` keeps yielding as the writer appends. Neither ever yields a
frame that is incomplete or fails its crc.

Speed: batches of >= KERNEL_BATCH_RECORDS_MIN records are framed, and read chunks of >=
codec.KERNEL_SCAN_BYTES_MIN bytes are walked, by numba kernels in ledger.codec; the
pure-Python path (msgspec + the crc32c package) is the reference and handles everything the
kernels hand back, and all of it under NUMBA_DISABLE_JIT=1.

The payload contract (owned by the engine's record schema): a msgpack array starting with
`[cmd_id, first_seq, last_seq]`, cmd_id gap-free from 1, seqs gap-free from 1 across records,
`last_seq == first_seq - 1` for a record without events. The writer refuses a batch that
breaks it; readers and recovery treat a break on disk as corruption.
"""

from __future__ import annotations

import bisect
import enum
import errno
import fcntl
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import numpy as np

from ledger import codec
from ledger.codec import HEADER_SIZE_BYTES, RecordHeader, ScanStop, decode_header

log = logging.getLogger("agentperp.ledger.journal")

# Segments roll before a batch that would push them past this size. 64 MiB keeps recovery
# (which scans the last segment in full) well under a second and the file count low.
SEGMENT_SIZE_BYTES_DEFAULT = 64 * 1024 * 1024
SEGMENT_SIZE_BYTES_MIN = 4 * 1024
SEGMENT_SIZE_BYTES_MAX = 1024 * 1024 * 1024

# One sparse-index entry per this many bytes of segment: a seek then scans at most this
# much. A 64 MiB segment has ~1 000 entries (a few tens of KiB in memory).
INDEX_STRIDE_BYTES_DEFAULT = 64 * 1024

# Batches of at least this many records are framed by the numba kernel (see ledger.codec).
KERNEL_BATCH_RECORDS_MIN = 64

# Readers pull segments in chunks this large (one pread per chunk, not per frame).
READ_CHUNK_BYTES_DEFAULT = 1024 * 1024

# Follow mode polls this often when no notification hook is given.
FOLLOW_POLL_INTERVAL_S_DEFAULT = 0.005

SEGMENT_SUFFIX = ".seg"
INDEX_SUFFIX = ".idx"
LOCK_NAME = ".lock"
_SEGMENT_RE = re.compile(r"^(\d{20})-(\d{20})\.seg$")


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


class JournalError(Exception):
    """Base of the journal's errors."""


class JournalCorrupt(JournalError):
    """Damage that no crash explains: the journal refuses to guess.

    Carries the segment `path`, the byte `offset` of the bad frame and a `hint` for ops.
    """

    def __init__(self, path: Path | str, offset: int, reason: str, hint: str = "") -> None:
        self.path = Path(path)
        self.offset = offset
        self.reason = reason
        self.hint = hint or (
            "restore this segment from a replica or backup; do not delete records by hand"
        )
        super().__init__(f"journal corrupt: {self.path} at offset {offset}: {reason} ({self.hint})")


class JournalFailed(JournalError):
    """The writer hit an I/O error and stopped (fail-stop). Restart to recover from disk."""


class JournalLocked(JournalError):
    """Another writer holds the journal directory."""


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


# ---------------------------------------------------------------------------------------
# Segment names


@dataclass(frozen=True, slots=True, order=True)
class Segment:
    """One segment file: its first record's cmd_id and first_seq, and its path."""

    first_cmd_id: int
    first_seq: int
    path: Path = field(compare=False)

    @property
    def name(self) -> str:
        return self.path.name


def segment_name(first_cmd_id: int, first_seq: int) -> str:
    """Return the file name of a segment starting at `first_cmd_id` / `first_seq`."""
    return f"{first_cmd_id:020d}-{first_seq:020d}{SEGMENT_SUFFIX}"


def list_segments(directory: Path | str) -> list[Segment]:
    """Return the segments of `directory` in order; raise JournalCorrupt on bad names."""
    directory = Path(directory)
    segments = []
    for entry in os.scandir(directory):
        if not entry.name.endswith(SEGMENT_SUFFIX):
            continue
        match = _SEGMENT_RE.match(entry.name)
        if match is None:
            raise JournalCorrupt(entry.path, 0, "unexpected segment file name",
                                 "move the stray file out of the journal directory")
        segments.append(Segment(int(match[1]), int(match[2]), Path(entry.path)))
    segments.sort()
    _check_segment_order(segments)
    return segments


def _check_segment_order(segments: list[Segment]) -> None:
    for before, after in zip(segments, segments[1:]):
        if after.first_cmd_id <= before.first_cmd_id or after.first_seq < before.first_seq:
            raise JournalCorrupt(after.path, 0,
                                 f"segment name out of order after {before.name}")
    if segments and (segments[0].first_cmd_id < 1 or segments[0].first_seq < 1):
        raise JournalCorrupt(segments[0].path, 0, "cmd_id and seq start at 1")


# ---------------------------------------------------------------------------------------
# Sparse index


class _IndexFile(msgspec.Struct, array_like=True):
    """On-disk form of a closed segment's SparseIndex (payload of one codec frame)."""

    version: int
    stride_bytes: int
    covered_bytes: int
    next_cmd_id: int
    next_seq: int
    entries: list[tuple[int, int, int]]  # (first_seq, cmd_id, offset)


_INDEX_FILE_VERSION = 1
_index_encoder = msgspec.msgpack.Encoder()
_index_decoder = msgspec.msgpack.Decoder(_IndexFile)


class SparseIndex:
    """Seq → byte offset for one segment, one entry every `stride_bytes`.

    Built contiguously from the segment start (by the writer as it appends, by readers as
    they read): `covered_bytes` is how far it has seen,
    `next_cmd_id` / `next_seq` what the record at `covered_bytes` must start with.
    An entry `(first_seq, cmd_id, offset)` is the exact start of a record, so seeking to
    the last entry with `first_seq <= from_seq` never skips the record holding `from_seq`
    (every earlier record ends before that entry's first_seq).
    """

    __slots__ = ("stride_bytes", "covered_bytes", "next_cmd_id", "next_seq", "entries",
                 "_last_entry_offset")

    def __init__(self, first_cmd_id: int, first_seq: int,
                 stride_bytes: int = INDEX_STRIDE_BYTES_DEFAULT) -> None:
        self.stride_bytes = stride_bytes
        self.covered_bytes = 0
        self.next_cmd_id = first_cmd_id
        self.next_seq = first_seq
        self.entries: list[tuple[int, int, int]] = [(first_seq, first_cmd_id, 0)]
        self._last_entry_offset = 0

    def seek(self, from_seq: int) -> tuple[int, int, int]:
        """Return `(offset, cmd_id, first_seq)` of a record at or before the one to start at."""
        i = bisect.bisect_right(self.entries, from_seq, key=lambda entry: entry[0]) - 1
        first_seq, cmd_id, offset = self.entries[max(i, 0)]
        return offset, cmd_id, first_seq

    def to_bytes(self) -> bytes:
        """Return the side-file bytes (one crc-checked frame)."""
        body = _IndexFile(_INDEX_FILE_VERSION, self.stride_bytes, self.covered_bytes,
                          self.next_cmd_id, self.next_seq, list(self.entries))
        return codec.encode_frame(_index_encoder.encode(body))

    @classmethod
    def from_bytes(cls, data: bytes, segment: Segment) -> SparseIndex | None:
        """Parse a side file; return None if it is damaged or belongs to another segment."""
        scan = codec.scan_frames(data)
        if scan.stop is not ScanStop.END or len(scan.payloads) != 1:
            return None
        try:
            body = _index_decoder.decode(scan.payloads[0])
        except msgspec.DecodeError:
            return None
        if body.version != _INDEX_FILE_VERSION or not body.entries:
            return None
        if body.entries[0] != (segment.first_seq, segment.first_cmd_id, 0):
            return None
        index = cls(segment.first_cmd_id, segment.first_seq, body.stride_bytes)
        index.covered_bytes = body.covered_bytes
        index.next_cmd_id = body.next_cmd_id
        index.next_seq = body.next_seq
        index.entries = [tuple(entry) for entry in body.entries]
        index._last_entry_offset = index.entries[-1][2]
        return index


def index_path(segment: Segment) -> Path:
    """Return the side-file path of `segment`'s sparse index."""
    return segment.path.with_name(segment.name + INDEX_SUFFIX)


def write_index_file(segment: Segment, index: SparseIndex) -> None:
    """Write `segment`'s index side file atomically; best effort (it is rebuildable)."""
    target = index_path(segment)
    tmp = target.with_name(target.name + ".tmp")
    try:
        tmp.write_bytes(index.to_bytes())
        os.replace(tmp, target)
    except OSError as exc:
        log.warning("could not write index %s: %s (it will be rebuilt)", target, exc)


def load_index_file(segment: Segment) -> SparseIndex | None:
    """Return `segment`'s side-file index if present, intact and covering the whole file."""
    try:
        data = index_path(segment).read_bytes()
        size_bytes = segment.path.stat().st_size
    except OSError:
        return None
    index = SparseIndex.from_bytes(data, segment)
    if index is None or index.covered_bytes != size_bytes:
        return None
    return index


# ---------------------------------------------------------------------------------------
# Reading


class _Drain(enum.Enum):
    EOF = "eof"      # every byte of the segment was a valid record
    TAIL = "tail"    # stopped before an incomplete or invalid frame at the end
    LIMIT = "limit"  # stopped before a record past the caller's cmd_id limit


@dataclass(slots=True)
class _Cursor:
    """Where a reader is: the next record starts at `offset` of `segment`."""

    segment: Segment
    offset: int
    next_cmd_id: int
    next_seq: int
    status: _Drain = _Drain.EOF
    tail_reason: str = ""


@dataclass(frozen=True, slots=True)
class SegmentEnd:
    """Where a segment's valid records end: `valid_bytes` of `size_bytes` (the rest is a
    torn tail, `tail_reason` says why), and the last record's cmd_id and last_seq (one
    less than the segment's name values when it holds no record)."""

    segment: Segment
    valid_bytes: int
    size_bytes: int
    last_cmd_id: int
    last_seq: int
    tail_reason: str

    @property
    def torn_bytes(self) -> int:
        return self.size_bytes - self.valid_bytes


class JournalReader:
    """Iterate a journal directory's records; safe beside a live writer.

    Records come as `(RecordHeader, payload_bytes)`. Keeps a sparse index per segment in
    memory (loaded from side files or built while reading) to seek.
    """

    def __init__(self, directory: Path | str, *,
                 read_chunk_bytes: int = READ_CHUNK_BYTES_DEFAULT,
                 index_stride_bytes: int = INDEX_STRIDE_BYTES_DEFAULT,
                 kernel_scan_bytes_min: int = codec.KERNEL_SCAN_BYTES_MIN) -> None:
        self.directory = Path(directory)
        self.read_chunk_bytes = read_chunk_bytes
        self.index_stride_bytes = index_stride_bytes
        self._indexes: dict[str, SparseIndex] = {}
        # Chunks at least this large are walked by the numba kernel (see ledger.codec).
        self.kernel_scan_bytes_min = kernel_scan_bytes_min
        self._kernel_columns = None

    def segments(self) -> list[Segment]:
        """Return the segments currently on disk, in order."""
        return list_segments(self.directory)

    def read(self, from_seq: int = 1) -> Iterator[tuple[RecordHeader, bytes]]:
        """Yield every record with `last_seq >= from_seq` present now, in order.

        Stops quietly before an incomplete frame at the end of the last segment (a writer
        may be writing it); raises JournalCorrupt on any other damage.
        """
        segments = self.segments()
        if not segments:
            return
        cursor = self._seek(segments, from_seq)
        position = segments.index(cursor.segment)
        for i in range(position, len(segments)):
            closed = i < len(segments) - 1
            yield from self._drain(cursor, from_seq, None, closed)
            if closed:
                self._advance(cursor, segments[i + 1])

    def follow(self, from_seq: int = 1, *, stop: threading.Event | None = None,
               poll_interval_s: float = FOLLOW_POLL_INTERVAL_S_DEFAULT,
               cmd_id_max: Callable[[], int] | None = None,
               wait: Callable[[float], None] | None = None,
               ) -> Iterator[tuple[RecordHeader, bytes]]:
        """Yield records from `from_seq` on, then keep yielding new ones as they appear.

        Ends when `stop` is set. `cmd_id_max()`, if given, caps what is yielded (the writer's
        durable watermark, for in-process consumers that must see only durable records).
        `wait(timeout_s)` replaces the sleep between polls (e.g. a writer's notification).
        """
        sleep = wait or time.sleep
        cursor: _Cursor | None = None
        while stop is None or not stop.is_set():
            try:
                segments = self.segments()
            except FileNotFoundError:
                segments = []  # the writer has not created the directory yet
            if cursor is None and segments:
                cursor = self._seek(segments, from_seq)
            if cursor is None:
                sleep(poll_interval_s)
                continue
            position = segments.index(cursor.segment)
            closed = position < len(segments) - 1
            limit = cmd_id_max() if cmd_id_max is not None else None
            yield from self._drain(cursor, from_seq, limit, closed)
            if closed and cursor.status is _Drain.EOF:
                self._advance(cursor, segments[position + 1])
                continue
            sleep(poll_interval_s)

    def segment_end(self, segment: Segment) -> SegmentEnd:
        """Scan `segment` in full and say where its valid records end (no repair)."""
        cursor = _Cursor(segment, 0, segment.first_cmd_id, segment.first_seq)
        for _ in self._drain(cursor, 1 << 62, None, closed=False):
            pass  # headers and continuity are checked by the drain itself
        size_bytes = segment.path.stat().st_size
        tail_reason = cursor.tail_reason if size_bytes > cursor.offset else ""
        return SegmentEnd(segment, cursor.offset, size_bytes, cursor.next_cmd_id - 1,
                          cursor.next_seq - 1, tail_reason)

    # -- internals ----------------------------------------------------------------------

    def _index(self, segment: Segment) -> SparseIndex:
        index = self._indexes.get(segment.name)
        if index is None:
            index = load_index_file(segment) or SparseIndex(
                segment.first_cmd_id, segment.first_seq, self.index_stride_bytes)
            self._indexes[segment.name] = index
        return index

    def _seek(self, segments: list[Segment], from_seq: int) -> _Cursor:
        # Segments before the last one starting at or before from_seq hold only records
        # ending before from_seq (each ends before the next segment's first_seq).
        firsts = [segment.first_seq for segment in segments]
        position = max(bisect.bisect_right(firsts, from_seq) - 1, 0)
        segment = segments[position]
        offset, cmd_id, first_seq = self._index(segment).seek(from_seq)
        return _Cursor(segment, offset, cmd_id, first_seq)

    def _advance(self, cursor: _Cursor, segment: Segment) -> None:
        if (segment.first_cmd_id, segment.first_seq) != (cursor.next_cmd_id, cursor.next_seq):
            raise JournalCorrupt(
                segment.path, 0,
                f"segment starts at cmd_id {segment.first_cmd_id} seq {segment.first_seq}, "
                f"expected cmd_id {cursor.next_cmd_id} seq {cursor.next_seq}",
                "a segment is missing or misnamed")
        index = self._indexes.get(cursor.segment.name)
        if index is not None and index.covered_bytes == cursor.offset:
            # Closed and fully seen: save the index so the next reader can seek at once.
            if not index_path(cursor.segment).exists():
                write_index_file(cursor.segment, index)
        cursor.segment = segment
        cursor.offset = 0

    def _drain(self, cursor: _Cursor, from_seq: int, cmd_id_max: int | None,
               closed: bool) -> Iterator[tuple[RecordHeader, bytes]]:
        """Yield the valid records of `cursor.segment` from `cursor.offset` to its end.

        `closed` says no writer appends to it any more: then an incomplete tail is damage.
        Checks each record's header continues the one before; extends the segment's sparse
        index when reading past what it covers. The cursor is kept exact even when the
        consumer abandons the iteration.
        """
        index = self._index(cursor.segment)
        path = cursor.segment.path
        stride_bytes = index.stride_bytes
        entries = index.entries
        decode = decode_header
        limit = cmd_id_max if cmd_id_max is not None else (1 << 63) - 1
        header_size = HEADER_SIZE_BYTES
        unpack_from = codec.HEADER.unpack_from
        checksum = codec.crc32c
        size_min, size_max = codec.PAYLOAD_SIZE_BYTES_MIN, codec.PAYLOAD_SIZE_BYTES_MAX
        next_cmd_id, next_seq, position = cursor.next_cmd_id, cursor.next_seq, cursor.offset
        extends_index = False
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            pending = b""
            want = self.read_chunk_bytes
            while True:
                base = position  # file offset of pending[0]
                data = os.pread(fd, want, base + len(pending))
                at_eof = len(data) < want  # regular files read short only at the end
                pending = pending + data if pending else data
                extends_index = index.covered_bytes == position
                entry_due_at = index._last_entry_offset + stride_bytes if extends_index else 1 << 63
                # The happy path, inlined (one loop, no intermediate lists): it stops at the
                # first frame that is not whole and valid, and codec.scan_frames judges that.
                end = len(pending)
                relative = 0
                if end >= self.kernel_scan_bytes_min and codec.frame_kernel() is not None:
                    # Fast path: numba walks the chunk; Python slices and yields.
                    kernel, _, tables = codec.frame_kernel()
                    out = self._kernel_out(end)
                    count = kernel(np.frombuffer(pending, np.uint8), 0, end, tables, next_cmd_id,
                                   next_seq, limit, out)
                    if count:
                        columns = out[:, :count].tolist()
                        for offset, body_end, cmd_id, first_seq, last_seq in zip(*columns):
                            if base + offset >= entry_due_at:
                                entries.append((first_seq, cmd_id, base + offset))
                                index._last_entry_offset = base + offset
                                entry_due_at = base + offset + stride_bytes
                            if last_seq >= from_seq:
                                yield (RecordHeader(cmd_id, first_seq, last_seq),
                                       pending[offset + header_size:body_end])
                        # The cursor moves per chunk here: an abandoned iteration is never
                        # resumed, so it need not be exact mid-chunk.
                        relative = columns[1][-1]
                        position = base + relative
                        next_cmd_id = columns[2][-1] + 1
                        next_seq = columns[4][-1] + 1
                # Reference path: the rest of the chunk (all of it without the kernel).
                while end - relative >= header_size:
                    size_bytes, crc_expected = unpack_from(pending, relative)
                    body_end = relative + header_size + size_bytes
                    if size_bytes < size_min or size_bytes > size_max or body_end > end:
                        break
                    payload = pending[relative + header_size:body_end]
                    if checksum(payload) != crc_expected:
                        break
                    try:
                        header = decode(payload)
                    except msgspec.DecodeError as exc:
                        raise JournalCorrupt(
                            path, position, f"record header does not decode: {exc}",
                            "the frame's crc is valid: a writer bug, not a disk fault") from exc
                    if header.cmd_id > limit:
                        cursor.status = _Drain.LIMIT
                        return
                    if (header.cmd_id != next_cmd_id or header.first_seq != next_seq
                            or header.last_seq < next_seq - 1):
                        raise _discontinuity(path, position, header, next_cmd_id, next_seq)
                    if position >= entry_due_at:
                        entries.append((next_seq, next_cmd_id, position))
                        index._last_entry_offset = position
                        entry_due_at = position + stride_bytes
                    next_cmd_id = header.cmd_id + 1
                    next_seq = header.last_seq + 1
                    position = base + body_end
                    relative = body_end
                    if header.last_seq >= from_seq:
                        yield header, payload
                if extends_index:
                    index.covered_bytes = position
                    index.next_cmd_id, index.next_seq = next_cmd_id, next_seq
                scan = codec.scan_frames(pending, relative, at_eof=at_eof)
                if scan.payloads:  # the inline loop stopped early on a frame that is valid
                    raise JournalCorrupt(path, position, "frame scan disagreement",
                                         "a bug in the ledger: report it")
                pending = pending[scan.end_offset:]
                if scan.stop is ScanStop.CORRUPT:
                    raise JournalCorrupt(path, position, scan.reason)
                if not at_eof:
                    want = self._want_bytes(pending)
                    continue
                if scan.stop is ScanStop.END:
                    cursor.status = _Drain.EOF
                    return
                if closed:
                    raise JournalCorrupt(path, position, f"torn frame in a closed segment: "
                                         f"{scan.reason}")
                cursor.status = _Drain.TAIL
                cursor.tail_reason = scan.reason
                return
        finally:
            cursor.offset, cursor.next_cmd_id, cursor.next_seq = position, next_cmd_id, next_seq
            os.close(fd)

    def _kernel_out(self, size_bytes: int):
        # A frame is at least 9 bytes: size the output for the densest possible chunk.
        columns = size_bytes // (HEADER_SIZE_BYTES + codec.PAYLOAD_SIZE_BYTES_MIN) + 1
        if self._kernel_columns is None or self._kernel_columns.shape[1] < columns:
            self._kernel_columns = np.empty((5, columns), np.int64)
        return self._kernel_columns

    def _want_bytes(self, pending: bytes) -> int:
        # A frame larger than a chunk: read at least the rest of it in one go.
        if len(pending) >= HEADER_SIZE_BYTES:
            size_bytes = codec.HEADER.unpack_from(pending)[0]
            if size_bytes <= codec.PAYLOAD_SIZE_BYTES_MAX:
                return max(self.read_chunk_bytes, HEADER_SIZE_BYTES + size_bytes - len(pending))
        return self.read_chunk_bytes


def _discontinuity(path: Path, offset: int, header: RecordHeader, next_cmd_id: int,
                   next_seq: int) -> JournalCorrupt:
    return JournalCorrupt(
        path, offset,
        f"record cmd_id {header.cmd_id} seqs {header.first_seq}..{header.last_seq}, "
        f"expected cmd_id {next_cmd_id} from seq {next_seq}",
        "cmd_id or seq discontinuity: records are missing or duplicated")


# ---------------------------------------------------------------------------------------
# Writing


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
                ends, cmd_ids, first_seqs, last_seqs = meta.tolist()
                return memoryview(frames), (ends, cmd_ids, first_seqs, last_seqs[-1])
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

    def _commit(self, frame_ends: list[int], cmd_ids: list[int], first_seqs: list[int],
                last_seq: int) -> None:
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
            start = base + frame_ends[i - 1] if i else base
            index.entries.append((first_seqs[i], cmd_ids[i], start))
            index._last_entry_offset = start
            due = start + index.stride_bytes - base
        end = base + frame_ends[-1]
        index.covered_bytes = end
        index.next_cmd_id, index.next_seq = cmd_ids[-1] + 1, last_seq + 1
        with self._appended:
            self._segment_size_bytes = end
            self._last_cmd_id = cmd_ids[-1]
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
