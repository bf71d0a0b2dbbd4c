"""The sparse index of a segment: seq -> byte offset, one entry every stride, and its
optional, rebuildable side file (``{segment}.idx``, one codec frame of msgpack)."""

from __future__ import annotations

import bisect
import logging
import os
from pathlib import Path

import msgspec

from ledger import codec
from ledger.codec import ScanStop
from ledger.journal.segments import INDEX_SUFFIX, Segment

log = logging.getLogger("agentperp.ledger.journal")

# One sparse-index entry per this many bytes of segment: a seek then scans at most this
# much. A 64 MiB segment has ~1 000 entries (a few tens of KiB in memory).
INDEX_STRIDE_BYTES_DEFAULT = 64 * 1024


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

    def cover(self, position: int, next_cmd_id: int, next_seq: int) -> None:
        """A read that began within `covered_bytes` has seen every record up to `position`
        (the end of a record; `next_cmd_id` / `next_seq` start the one after): cover them.
        Never backwards: a read that stopped short of the index's end leaves it as it is."""
        if position > self.covered_bytes:
            self.covered_bytes = position
            self.next_cmd_id, self.next_seq = next_cmd_id, next_seq

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
