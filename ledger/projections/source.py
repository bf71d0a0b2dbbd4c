"""Read journal records in bounded batches for the projection runner.

The same reader as the gateways' hub (``ledger.journal.JournalReader``): crc, length and
seq continuity are checked there. Payloads are decoded by msgspec in one call per batch.
A batch is cut at a record boundary, so a checkpoint (the last seq applied) always falls
between two records.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from ledger.journal import JournalReader
from ledger.records import JournalRecord

# Events per batch, at most (a record is never split, so a batch may exceed it by one
# record's events). Bounds the time one off-loop read + apply holds the GIL, and the size of
# one SQL transaction.
BATCH_EVENTS_DEFAULT = 5_000
BATCH_EVENTS_MIN = 1
BATCH_EVENTS_MAX = 100_000

_batch_decoder = msgspec.msgpack.Decoder(list[JournalRecord])


def _array_header(n: int) -> bytes:
    return b"\xdd" + n.to_bytes(4, "big")  # msgpack array32 of n items


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
            return _batch_decoder.decode(_array_header(len(payloads)) + b"".join(payloads))
        except BaseException:
            self._records = None  # a failed read is never continued: the retry reads afresh
            raise

    def last_seq(self) -> int:
        """The last seq on disk now (scans the last segment; for tools, not the hot path)."""
        segments = self._reader.segments()
        if not segments:
            return 0
        return self._reader.segment_end(segments[-1]).last_seq
