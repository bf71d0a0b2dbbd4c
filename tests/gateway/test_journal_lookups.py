"""The gateways' reads of the journal by seq (``hub.JournalLookups``): backfill, the HTTP
events pages, the dashboard's history, a repeated client_id's first result."""

from __future__ import annotations

import os

import pytest

from adapters.gateway.hub import JournalLookups
from ledger.journal import INDEX_STRIDE_BYTES_DEFAULT, Journal, JournalReader
from ledger.records import decode_record
from replay.generate import generate


@pytest.fixture(scope="module")
def journal(tmp_path_factory):
    """A generated session's journal (one segment still without an index file, as the
    venue's newest one is) and its records, read whole."""
    data = tmp_path_factory.mktemp("lookups")
    generate(data, 6_000, progress=False)
    journal_dir = data / "journal"
    records = [decode_record(payload) for _, payload in JournalReader(journal_dir).read(from_seq=1)]
    return journal_dir, records


@pytest.mark.parametrize("from_seq, to_seq, limit", [(1, 6_000, 50), (17, 40, 1_000), (2_500, 5_999, 300),
                                                     (5_990, 6_000, 5)])
def test_events_are_the_journal_s_in_order(journal, from_seq, to_seq, limit):
    journal_dir, records = journal
    in_range = [event for record in records for event in record.events if from_seq <= event.seq <= to_seq]
    found, next_seq = JournalLookups(journal_dir).events(from_seq, to_seq, limit)
    assert found == in_range[:len(found)]
    assert len(found) >= min(limit, len(in_range))  # whole records: may pass the limit by one record's events
    assert next_seq == (found[-1].seq + 1 if len(found) < len(in_range) else to_seq + 1)


def test_record_holds_its_seq(journal):
    journal_dir, records = journal
    lookups = JournalLookups(journal_dir)
    for record in records[1::397]:
        if record.events:
            assert lookups.record(record.last_seq) == record
    assert lookups.record(records[-1].last_seq + 1) is None


def _count_reads(monkeypatch) -> list[int]:
    """Bytes read by ``os.pread`` from now on (the journal reader's only read), in a list of one."""
    read_bytes = [0]
    pread = os.pread

    def counted(fd, length, offset):
        data = pread(fd, length, offset)
        read_bytes[0] += len(data)
        return data

    monkeypatch.setattr(os, "pread", counted)
    return read_bytes


def test_lookups_follow_a_growing_journal(journal, tmp_path, monkeypatch):
    """The newest seqs looked up while the venue writes (each lookup stopping at its record,
    mid-chunk): each reads what was written since the one before and about a stride more,
    not all that was written since the first lookup."""
    journal_dir, _ = journal
    payloads = [payload for _, payload in JournalReader(journal_dir).read(from_seq=0)]
    live = Journal.open(tmp_path / "journal")
    [segment] = live.reader().segments()
    lookups = JournalLookups(tmp_path / "journal")
    read_bytes = _count_reads(monkeypatch)
    size_seen = 0  # the segment's size at the previous lookup
    step = len(payloads) // 10
    for start in range(0, len(payloads), step):
        live.append_batch(payloads[start:start + step])
        for back in (0, 100):
            before, size = read_bytes[0], segment.path.stat().st_size
            seq = live.last_seq - back
            record = lookups.record(seq)
            assert record.first_seq <= seq <= record.last_seq
            if size_seen:
                assert read_bytes[0] - before <= size - size_seen + 2 * INDEX_STRIDE_BYTES_DEFAULT
            size_seen = size
    live.close()


def test_lookups_of_recent_seqs_read_what_is_recent(journal, monkeypatch):
    """The first lookup indexes the segment as it reads it; later ones seek near their seq.
    (With a new reader per lookup, each read the segment from its start.)"""
    journal_dir, records = journal
    segment_bytes = sum(path.stat().st_size for path in journal_dir.iterdir())
    lookups = JournalLookups(journal_dir)
    last_seq = records[-1].last_seq
    assert lookups.record(last_seq) == records[-1]
    read_bytes = _count_reads(monkeypatch)
    for back in (0, 10, 100):
        assert lookups.events(last_seq - back, last_seq, 1_000)[0][-1].seq == last_seq
        assert lookups.record(last_seq - back).first_seq <= last_seq - back
    assert 0 < read_bytes[0] < segment_bytes  # six lookups, less than one read of the segment
