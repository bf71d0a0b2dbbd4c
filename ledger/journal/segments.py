"""Segment files: names, listing, order.

A segment is named after its first record's cmd_id and first_seq
(``{first_cmd_id:020d}-{first_seq:020d}.seg``), so a reader finds the segment holding a seq
from the names alone, and an empty last segment (the writer rolled, then stopped) still says
where the journal ends.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ledger.journal.errors import JournalCorrupt

# Segments roll before a batch that would push them past this size. 64 MiB keeps recovery
# (which scans the last segment in full) well under a second and the file count low.
SEGMENT_SIZE_BYTES_DEFAULT = 64 * 1024 * 1024
SEGMENT_SIZE_BYTES_MIN = 4 * 1024
SEGMENT_SIZE_BYTES_MAX = 1024 * 1024 * 1024

SEGMENT_SUFFIX = ".seg"
INDEX_SUFFIX = ".idx"
LOCK_NAME = ".lock"
_SEGMENT_RE = re.compile(r"^(\d{20})-(\d{20})\.seg$")


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
