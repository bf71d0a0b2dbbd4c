"""Read journal records in bounded batches for the projection runner.

The same reader as the gateways' hub (``ledger.journal.JournalReader``): crc, length and
seq continuity are checked there. Payloads are decoded by msgspec in one call per batch.
A batch is cut at a record boundary, so a checkpoint (the last seq applied) always falls
between two records.

The venue's live projections read the newest durable records from memory instead
(``RecentRecords``, fed by the venue after each group commit, and ``RecentSource``): the
same batches, without re-reading, re-checking and re-decoding what the venue just wrote.
Whatever the window does not hold whole (catching up after a restart, a projection lagging
beyond it) comes from the journal.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from pathlib import Path

import msgspec

from ledger.codec import msgpack_array_header
from ledger.journal import JournalReader
from ledger.records import JournalRecord

# Events per batch, at most (a record is never split, so a batch may exceed it by one
# record's events). Bounds the time one off-loop read + apply holds the GIL, and the size of
# one SQL transaction.
BATCH_EVENTS_DEFAULT = 5_000
BATCH_EVENTS_MIN = 1
BATCH_EVENTS_MAX = 100_000

# Events the in-memory window of the newest durable records holds, at most (whole records:
# the oldest are dropped first). ~3 default batches: a live projection a batch or two behind
# still reads from memory (settlement under `bench gateway`'s saturating load: 67 batches of
# ~3 700 events, none from the journal); one further behind (a slow chain, a restart) reads
# the journal. Memory: ~1.4 KB an event with its record and command (tracemalloc, a
# generated session's decoded records), so ~23 MB at most; the window holds the venue's own
# objects, no copies. No larger: what it holds is what the loop frees when it drops it, and
# a window of 50 000 events (~70 MB) made the venue allocate into and free out of memory long
# out of the cache (decoding records and appending them: 3.2-3.4 us a record at 50 000,
# 2.65-2.77 at 16 384; the venue's CPU per command 0.96x, docs/projections.md).
RECENT_EVENTS_MAX = 16_384
# Dropped records are freed this many at a time. Freeing is most of the window's cost (~1 µs a
# record: its events and transfers, long out of the cache); half the window at once (~25 000
# records) stalled the venue's loop for tens of ms, every second under load: acks waited.
# Each compaction also moves the window's list (~50 000 pointers): 1 024 keeps that small.
RECENT_COMPACT_RECORDS = 1_024

_batch_decoder = msgspec.msgpack.Decoder(list[JournalRecord])


class JournalSource:
    """Batches of ``JournalRecord`` from a journal directory (safe beside the live writer).

    Consecutive batches continue one read of the journal (the reader's cursor) instead of
    seeking and re-scanning a chunk per batch: catching up reads each byte once. A read that
    reached the end of the journal ends; the next batch starts a new one from its seq.
    """

    def __init__(self, journal_dir: Path | str) -> None:
        self.journal_dir = Path(journal_dir)
        self._reader = JournalReader(self.journal_dir)  # keeps its sparse indexes between batches
        self._records = None  # the open read: an iterator of (header, payload)
        self._next_seq = 0  # the first seq the open read yields next (its records before it were taken)

    def read_batch(self, from_seq: int, to_seq: int, events_max: int) -> list[JournalRecord]:
        """Records holding events with ``from_seq <= seq <= to_seq``, whole, in order, until
        about ``events_max`` events; records without events are skipped."""
        assert BATCH_EVENTS_MIN <= events_max <= BATCH_EVENTS_MAX, events_max
        payloads: list[bytes] = []
        events = 0
        try:
            next_seq = from_seq  # the first seq still wanted
            while True:
                continued = self._records is not None and next_seq == self._next_seq
                if not continued:
                    self._records = self._reader.read(from_seq=next_seq)
                for header, payload in self._records:
                    if header.first_seq > to_seq:  # only when from_seq > to_seq: nothing to read
                        self._records = None  # that record was taken from the read: start afresh next time
                        break
                    if header.last_seq < header.first_seq or header.last_seq < from_seq:
                        continue  # a rejection (no event), or before the checkpoint
                    payloads.append(payload)
                    events += header.last_seq - header.first_seq + 1
                    next_seq = self._next_seq = header.last_seq + 1
                    if events >= events_max or header.last_seq >= to_seq:
                        break
                else:
                    self._records = None  # the read reached the end of what was on disk when it began
                    if continued:
                        continue  # records appended since then: look again, from a fresh read
                break
            if not payloads:
                return []
            return _batch_decoder.decode(msgpack_array_header(len(payloads)) + b"".join(payloads))
        except BaseException:
            self._records = None  # a failed read is never continued: the retry reads afresh
            raise

    def last_seq(self) -> int:
        """The last seq on disk now (scans the last segment; for tools, not the hot path)."""
        segments = self._reader.segments()
        if not segments:
            return 0
        return self._reader.segment_end(segments[-1]).last_seq


class RecentRecords:
    """The newest durable records holding events, in seq order, at most ``events_max``
    events (the oldest records are dropped first). Appended on the venue's loop after each
    group commit; read from the projections' threads (hence the lock, held for a bisect
    and a slice, never for a record-by-record walk)."""

    def __init__(self, events_max: int = RECENT_EVENTS_MAX) -> None:
        if events_max < 1:
            raise ValueError(f"events_max must be at least 1, not {events_max}")
        self.events_max = events_max
        self._lock = threading.Lock()
        self._records: list[JournalRecord] = []  # [_start:] is the window; before it: dropped, not yet compacted
        self._last_seqs: list[int] = []  # the records' last seqs (ascending): what reads bisect
        self._start = 0
        self._events = 0  # events in the window

    def append(self, records: list[JournalRecord]) -> None:
        """Add durable records (in journal order); those without events are not kept."""
        with self._lock:
            for record in records:
                events = record.last_seq - record.first_seq + 1
                if events <= 0:
                    continue  # a rejection or the genesis: no seq to read it by
                if self._start < len(self._records) and record.first_seq != self._last_seqs[-1] + 1:
                    # Never expected; a window with a hole would serve batches missing events.
                    self._records, self._last_seqs, self._start, self._events = [], [], 0, 0
                self._records.append(record)
                self._last_seqs.append(record.last_seq)
                self._events += events
            while self._events > self.events_max:
                dropped = self._records[self._start]
                self._events -= dropped.last_seq - dropped.first_seq + 1
                self._start += 1
            if self._start >= RECENT_COMPACT_RECORDS:
                del self._records[:self._start], self._last_seqs[:self._start]
                self._start = 0

    def read(self, from_seq: int, to_seq: int, events_max: int) -> list[JournalRecord] | None:
        """Exactly what ``JournalSource.read_batch(from_seq, to_seq, events_max)`` returns
        (``from_seq <= to_seq``), or None when the window does not hold that batch whole."""
        with self._lock:
            start = self._start
            if start == len(self._records) or self._records[start].first_seq > from_seq:
                return None  # empty, or from_seq was dropped (or never held)
            first = bisect_left(self._last_seqs, from_seq, start)  # the record holding from_seq
            if first == len(self._records):
                return None  # beyond the window's end
            # The window is contiguous, so records first..i hold last_seq[i] - first_seq + 1
            # events: the batch ends at the first record reaching to_seq or events_max events.
            end_seq = min(to_seq, self._records[first].first_seq + events_max - 1)
            last = bisect_left(self._last_seqs, end_seq, first)
            if last == len(self._records):
                return None  # the batch runs past the window's end: the journal may hold more
            return self._records[first:last + 1]


class RecentSource:
    """``JournalSource``'s batches, from ``RecentRecords`` when it holds the batch whole and
    from the journal otherwise (the records are equal either way: tests/projections/
    test_recent_source.py). One per projection; counts where its batches came from."""

    def __init__(self, recent: RecentRecords, journal: JournalSource) -> None:
        self.recent = recent
        self.journal = journal
        self.batches_from_memory = 0
        self.batches_from_journal = 0

    def read_batch(self, from_seq: int, to_seq: int, events_max: int) -> list[JournalRecord]:
        assert BATCH_EVENTS_MIN <= events_max <= BATCH_EVENTS_MAX, events_max
        records = self.recent.read(from_seq, to_seq, events_max) if from_seq <= to_seq else None
        if records is None:
            self.batches_from_journal += 1
            return self.journal.read_batch(from_seq, to_seq, events_max)
        self.batches_from_memory += 1
        return records

    def last_seq(self) -> int:
        return self.journal.last_seq()
