"""Ops views of a journal directory: `info` (what is there) and `check` (is it intact).

Both only read; neither repairs (opening a `Journal` for writing is the one repair path).
Each returns a structured result and has a text formatter for the CLI.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from ledger.genesis import read_genesis
from ledger.journal import JournalCorrupt, JournalReader, index_path, list_segments
from ledger.records import Genesis

SNAPSHOTS_DIR_NAME = "snapshots"

# `check` stops collecting decode failures past this many (it still counts them all).
DECODE_ERRORS_KEPT_MAX = 20


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """One segment file as seen on disk."""

    name: str
    first_cmd_id: int
    first_seq: int
    size_bytes: int
    has_index: bool


@dataclass(frozen=True, slots=True)
class FileInfo:
    """A file listed for ops (snapshots)."""

    name: str
    size_bytes: int


@dataclass(frozen=True, slots=True)
class JournalInfo:
    """Summary of a journal directory. Ranges are empty (last < first) without records.

    `torn_tail_bytes` is what the next writer would truncate off the last segment.
    """

    directory: Path
    segments: list[SegmentInfo]
    first_cmd_id: int
    last_cmd_id: int
    first_seq: int
    last_seq: int
    size_bytes: int
    torn_tail_bytes: int
    snapshots: list[FileInfo]
    genesis: Genesis | None = None  # the configuration the journal carries (None: none)

    @property
    def records_count(self) -> int:
        return max(self.last_cmd_id - self.first_cmd_id + 1, 0)

    @property
    def events_count(self) -> int:
        return max(self.last_seq - self.first_seq + 1, 0)


@dataclass(frozen=True, slots=True)
class Problem:
    """A damaged spot: segment path, byte offset, what is wrong and what to do."""

    path: Path
    offset: int
    reason: str
    hint: str


@dataclass(frozen=True, slots=True)
class DecodeFailure:
    """A record whose payload the caller's decoder refused."""

    cmd_id: int
    error: str


@dataclass(slots=True)
class CheckResult:
    """Outcome of a full pass: crc and header continuity of every frame, optional decode.

    `ok` is False on corruption or any decode failure; a torn tail alone is reported but
    is not a failure (recovery cuts it off).
    """

    directory: Path
    segments_count: int = 0
    records_count: int = 0
    events_count: int = 0
    last_cmd_id: int = 0
    last_seq: int = 0
    bytes_checked: int = 0
    torn_tail_bytes: int = 0
    corruption: Problem | None = None
    decode_failures_count: int = 0
    decode_failures: list[DecodeFailure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.corruption is None and self.decode_failures_count == 0


def list_snapshots(directory: Path | str) -> list[FileInfo]:
    """Return the files in `directory/snapshots/` (empty if there is no such folder)."""
    folder = Path(directory) / SNAPSHOTS_DIR_NAME
    if not folder.is_dir():
        return []
    return [FileInfo(p.name, p.stat().st_size) for p in sorted(folder.iterdir()) if p.is_file()]


def info(directory: Path | str) -> JournalInfo:
    """Describe `directory`: segments, cmd_id and seq ranges, size, snapshots.

    Scans only the last segment (to find where it ends); raises JournalCorrupt if that
    segment is damaged other than by a torn tail.
    """
    directory = Path(directory)
    segments = list_segments(directory)
    rows = [SegmentInfo(s.name, s.first_cmd_id, s.first_seq, s.path.stat().st_size,
                        index_path(s).exists()) for s in segments]
    if not segments:
        return JournalInfo(directory, [], 1, 0, 1, 0, 0, 0, list_snapshots(directory))
    end = JournalReader(directory).segment_end(segments[-1])
    try:
        genesis = read_genesis(directory)
    except msgspec.DecodeError:
        genesis = None  # `check` with a decoder says what is wrong with the record
    return JournalInfo(directory, rows, segments[0].first_cmd_id, end.last_cmd_id,
                       segments[0].first_seq, end.last_seq, sum(r.size_bytes for r in rows),
                       end.torn_bytes, list_snapshots(directory), genesis)


def check(directory: Path | str, decode: Callable[[bytes], object] | None = None) -> CheckResult:
    """Read every record of `directory`, verifying crc, lengths and cmd_id/seq continuity.

    `decode(payload)`, if given, is called on each payload; whatever it raises is counted
    as a decode failure (the first DECODE_ERRORS_KEPT_MAX are kept). Stops at the first
    corruption, which it reports with its segment and offset.
    """
    directory = Path(directory)
    result = CheckResult(directory)
    reader = JournalReader(directory)
    try:
        segments = reader.segments()
        result.segments_count = len(segments)
        for header, payload in reader.read(0):  # from seq 0: the genesis record too
            _count(result, header, payload, decode)
        if segments:
            result.torn_tail_bytes = reader.segment_end(segments[-1]).torn_bytes
    except JournalCorrupt as exc:
        result.corruption = Problem(exc.path, exc.offset, exc.reason, exc.hint)
    return result


def _count(result: CheckResult, header, payload: bytes, decode) -> None:
    result.records_count += 1
    result.events_count += header.last_seq - header.first_seq + 1
    result.last_cmd_id = header.cmd_id
    result.last_seq = header.last_seq
    result.bytes_checked += len(payload) + 8
    if decode is None:
        return
    try:
        decode(payload)
    except Exception as exc:  # noqa: BLE001 — any refusal of the decoder is a finding
        result.decode_failures_count += 1
        if len(result.decode_failures) < DECODE_ERRORS_KEPT_MAX:
            error = f"{type(exc).__name__}: {exc}"
            result.decode_failures.append(DecodeFailure(header.cmd_id, error))


def _bytes_text(size_bytes: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size_bytes >= scale:
            return f"{size_bytes / scale:.1f} {unit}"
    return f"{size_bytes} B"


def format_info(result: JournalInfo) -> str:
    """Render `info` for a terminal."""
    lines = [
        f"journal   {result.directory}",
        f"segments  {len(result.segments)}  ({_bytes_text(result.size_bytes)})",
        f"cmd_id    {result.first_cmd_id}..{result.last_cmd_id}  ({result.records_count} records)",
        f"seq       {result.first_seq}..{result.last_seq}  ({result.events_count} events)",
    ]
    if result.torn_tail_bytes:
        lines.append(f"torn tail {result.torn_tail_bytes} bytes at the end of the last segment "
                     "(the next writer truncates it)")
    for row in result.segments:
        index = "idx" if row.has_index else "   "
        lines.append(f"  {row.name}  {index}  {_bytes_text(row.size_bytes):>10}")
    lines.append(f"snapshots {len(result.snapshots)}")
    lines.extend(f"  {snap.name}  {_bytes_text(snap.size_bytes):>10}" for snap in result.snapshots)
    lines.extend(format_genesis(result.genesis))
    return "\n".join(lines)


def format_genesis(genesis: Genesis | None) -> list[str]:
    """The configuration a journal carries, every parameter, one line per market."""
    if genesis is None:
        return ["config    none in the journal (no genesis record: written before journals "
                "carried their configuration; readers assume the defaults)"]
    config = msgspec.to_builtins(genesis.config)
    markets = config.pop("markets")
    lines = [f"config    from the genesis record of journal {genesis.journal_id}",
             "  engine  " + " ".join(f"{key}={value}" for key, value in config.items())]
    for market in markets:
        head = f"  market {market.pop('market_id')} {market.pop('symbol')}  "
        lines.append(head + " ".join(f"{key}={value}" for key, value in market.items()))
    return lines


def format_check(result: CheckResult) -> str:
    """Render `check` for a terminal; the first line says OK or FAILED."""
    lines = [
        f"{'OK' if result.ok else 'FAILED'}  {result.directory}",
        f"segments  {result.segments_count}",
        f"records   {result.records_count} (last cmd_id {result.last_cmd_id})",
        f"events    {result.events_count} (last seq {result.last_seq})",
        f"checked   {_bytes_text(result.bytes_checked)}",
    ]
    if result.torn_tail_bytes:
        lines.append(f"torn tail {result.torn_tail_bytes} bytes (recovery will truncate them)")
    if result.corruption is not None:
        problem = result.corruption
        lines.append(f"CORRUPT   {problem.path} at offset {problem.offset}: {problem.reason}")
        lines.append(f"          hint: {problem.hint}")
    if result.decode_failures_count:
        lines.append(f"decode    {result.decode_failures_count} payloads refused")
        lines.extend(f"  cmd_id {f.cmd_id}: {f.error}" for f in result.decode_failures)
    return "\n".join(lines)
