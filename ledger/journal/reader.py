"""Reading a journal: ``JournalReader`` (``read``, ``read_spans``, ``follow``,
``segment_end``), safe beside a live writer in another thread or process. It never yields a frame that is incomplete or
fails its crc, and checks that every record's header continues the one before.

One frame-reading path: ``JournalReader._drain`` hands every chunk to ``codec.scan_frames``
(the reference), after the numba kernel ``codec.walk_frames`` — its tested twin
(``tests/ledger/test_ledger_kernel.py``) — has walked what it can of a large chunk.
"""

from __future__ import annotations

import bisect
import enum
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec
import numpy as np

from ledger import codec
from ledger.codec import HEADER_SIZE_BYTES, RecordHeader, ScanStop, decode_header
from ledger.journal.errors import JournalCorrupt
from ledger.journal.index import INDEX_STRIDE_BYTES_DEFAULT, SparseIndex, index_path, load_index_file, write_index_file
from ledger.journal.segments import Segment, list_segments

# Readers pull segments in chunks this large (one pread per chunk, not per frame).
READ_CHUNK_BYTES_DEFAULT = 1024 * 1024

# Follow mode polls this often when no notification hook is given.
FOLLOW_POLL_INTERVAL_S_DEFAULT = 0.005

# A reader keeps the sparse indexes of at most this many segments in memory, least recently
# used evicted first (an evicted one is reloaded from its side file, or rebuilt, when
# needed). Each is at most SEGMENT_SIZE_BYTES_MAX / stride entries (16 384 at 1 GiB / 64 KiB;
# ~1 000 for the default 64 MiB segments): 64 of them are a few MiB at worst, while a reader
# that follows a venue for months would otherwise hold one per segment ever written.
INDEXES_CACHED_MAX = 64


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
                 indexes_cached_max: int = INDEXES_CACHED_MAX,
                 kernel_scan_bytes_min: int = codec.KERNEL_SCAN_BYTES_MIN) -> None:
        if read_chunk_bytes < 1:  # a read of 0 bytes is never short: the walk would spin at the chunk's start
            raise ValueError(f"read_chunk_bytes must be at least 1, not {read_chunk_bytes}")
        self.directory = Path(directory)
        self.read_chunk_bytes = read_chunk_bytes
        self.index_stride_bytes = index_stride_bytes
        self.indexes_cached_max = indexes_cached_max
        self._indexes: OrderedDict[str, SparseIndex] = OrderedDict()  # LRU, INDEXES_CACHED_MAX
        # Chunks at least this large are walked by the numba kernel (see ledger.codec).
        self.kernel_scan_bytes_min = kernel_scan_bytes_min
        self._kernel_columns = None

    def segments(self) -> list[Segment]:
        """Return the segments currently on disk, in order."""
        return list_segments(self.directory)

    def last_seq_estimate(self) -> int:
        """The journal's last seq, estimated without reading a record (where
        ``segment_end``'s full scan would cost too much): what the last segment's sparse
        index covers, plus the bytes beyond it at the journal's events per byte up to there."""
        segments = self.segments()
        if not segments:
            return 0
        last = segments[-1]
        index = self._index(last)
        known_seq = index.next_seq - 1
        known_bytes = sum(segment.path.stat().st_size for segment in segments[:-1]) + index.covered_bytes
        beyond_bytes = last.path.stat().st_size - index.covered_bytes
        return known_seq + (beyond_bytes * known_seq // known_bytes if known_bytes else 0)

    def read(self, from_seq: int = 1) -> Iterator[tuple[RecordHeader, bytes]]:
        """Yield every record with `last_seq >= from_seq` present now, in order.

        Stops quietly before an incomplete frame at the end of the last segment (a writer
        may be writing it); raises JournalCorrupt on any other damage.
        """
        return self._walk(from_seq, batched=False)

    def read_spans(self, from_seq: int = 1) -> Iterator[codec.PayloadSpans]:
        """Yield the payloads of every record with `last_seq >= from_seq` present now, in
        order, as `codec.PayloadSpans` into each chunk read (one per chunk, of any length >= 1).

        The same frames, crc and continuity checks as `read`, without a header object, a bytes
        object and a generator step per record: for readers that decode payloads in bulk
        (replay).
        """
        return self._walk(from_seq, batched=True)

    def _walk(self, from_seq: int, *, batched: bool) -> Iterator:
        """Every segment from the one holding `from_seq` to the last, drained in order."""
        segments = self.segments()
        if not segments:
            return
        cursor = self._seek(segments, from_seq)
        position = segments.index(cursor.segment)
        for i in range(position, len(segments)):
            closed = i < len(segments) - 1
            yield from self._drain(cursor, from_seq, None, closed, batched=batched)
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
        indexes = self._indexes
        index = indexes.get(segment.name)
        if index is None:
            index = load_index_file(segment) or SparseIndex(
                segment.first_cmd_id, segment.first_seq, self.index_stride_bytes)
            indexes[segment.name] = index
            while len(indexes) > self.indexes_cached_max:
                indexes.popitem(last=False)  # O(1): the least recently used
        else:
            indexes.move_to_end(segment.name)
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
               closed: bool, batched: bool = False) -> Iterator:
        """Yield the valid records of `cursor.segment` from `cursor.offset` to its end:
        `(header, payload)` each, or with `batched` the `codec.PayloadSpans` of each chunk.

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
                # A chunk that starts within what the index has seen continues it from its end
                # (its entries past `covered_bytes` are new: every record before that end lies
                # before `entry_due_at`), so a reader of a growing segment seeks near the new.
                extends_index = position <= index.covered_bytes
                entry_due_at = index._last_entry_offset + stride_bytes if extends_index else 1 << 63
                end = len(pending)
                relative = 0
                if end >= self.kernel_scan_bytes_min and codec.frame_kernel() is not None:
                    # Fast path: numba walks the chunk; Python slices and yields.
                    kernel, _, tables = codec.frame_kernel()
                    out = self._kernel_out(end)
                    count = kernel(np.frombuffer(pending, np.uint8), 0, end, tables, next_cmd_id,
                                   next_seq, limit, out)
                    if count:
                        # Columns stay arrays (searched, sliced): lists only for per-record yields.
                        offsets, ends, cmd_ids, first_seqs, last_seqs = out[:, :count]
                        # Index entries: the first record at or past each stride (offsets grow).
                        i = int(offsets.searchsorted(entry_due_at - base))
                        while i < count:
                            offset = int(offsets[i])
                            entries.append((int(first_seqs[i]), int(cmd_ids[i]), base + offset))
                            index._last_entry_offset = base + offset
                            entry_due_at = base + offset + stride_bytes
                            i += 1 + int(offsets[i + 1:].searchsorted(entry_due_at - base))
                        first = int(last_seqs.searchsorted(from_seq))  # last_seqs never decrease
                        # Read before yielding: `out` is this reader's, reused by its next walk.
                        walked = int(ends[-1]), int(cmd_ids[-1]) + 1, int(last_seqs[-1]) + 1
                        if extends_index:  # the chunk's entries are in: cover its records before any yield
                            index.cover(base + walked[0], walked[1], walked[2])
                        if batched:
                            if first < count:
                                yield codec.PayloadSpans(pending, offsets[first:] + header_size, ends[first:].copy())
                        else:
                            for cmd_id, first_seq, last_seq, offset, body_end in zip(
                                    *out[2:5, first:count].tolist(), *out[0:2, first:count].tolist()):
                                yield (RecordHeader(cmd_id, first_seq, last_seq),
                                       pending[offset + header_size:body_end])
                        # The cursor moves per chunk here: an abandoned iteration is never
                        # resumed, so it need not be exact mid-chunk.
                        relative, next_cmd_id, next_seq = walked
                        position = base + relative
                # Reference path: the rest of the chunk (all of it without the kernel), framed
                # and judged by codec.scan_frames, the one frame reader.
                scan = codec.scan_frames(pending, relative, at_eof=at_eof)
                batch: list[int] = []  # with `batched`: where the payloads to yield start and end
                for payload, offset in zip(scan.payloads, scan.offsets):
                    try:
                        header = decode(payload)
                    except msgspec.DecodeError as exc:
                        raise JournalCorrupt(
                            path, position, f"record header does not decode: {exc}",
                            "the frame's crc is valid: a writer bug, not a disk fault") from exc
                    if header.cmd_id > limit:  # what was seen stays covered (the finally)
                        cursor.status = _Drain.LIMIT
                        if batch:
                            yield _spans(pending, batch)
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
                    position = base + offset + header_size + len(payload)
                    if header.last_seq >= from_seq:
                        if batched:
                            batch += (offset + header_size, offset + header_size + len(payload))
                        else:
                            yield header, payload
                if extends_index:
                    index.cover(position, next_cmd_id, next_seq)
                if batch:
                    yield _spans(pending, batch)
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
            if extends_index:  # a reader that stops mid-chunk keeps what it indexed covered
                index.cover(position, next_cmd_id, next_seq)
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


def _spans(buffer: bytes, bounds: list[int]) -> codec.PayloadSpans:
    """`PayloadSpans` of `buffer` from `[start, end, start, end, ...]`."""
    pairs = np.array(bounds, np.int64).reshape(-1, 2)
    return codec.PayloadSpans(buffer, pairs[:, 0].copy(), pairs[:, 1].copy())


def _discontinuity(path: Path, offset: int, header: RecordHeader, next_cmd_id: int,
                   next_seq: int) -> JournalCorrupt:
    return JournalCorrupt(
        path, offset,
        f"record cmd_id {header.cmd_id} seqs {header.first_seq}..{header.last_seq}, "
        f"expected cmd_id {next_cmd_id} from seq {next_seq}",
        "cmd_id or seq discontinuity: records are missing or duplicated")
