"""The journal on real files: append, roll, read from any seq, follow, recovery."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from journal_testkit import Records, assert_intact, expected_records, make_payload

from ledger.codec import HEADER_SIZE_BYTES
from ledger.journal import (FsyncPolicy, Journal, JournalCorrupt, JournalLocked, JournalReader,
                            index_path, list_segments, segment_name)

SEGMENT_BYTES_SMALL = 16 * 1024
STRIDE_BYTES_SMALL = 512
WRITER = Path(__file__).with_name("journal_writer_proc.py")


def write_journal(directory, batch_sizes, **options) -> Journal:
    journal = Journal.open(directory, **options)
    records = Records(journal.last_cmd_id, journal.last_seq)
    for size in batch_sizes:
        journal.append_batch(records.batch(size))
    return journal


def read_all(directory, from_seq=1):
    return list(JournalReader(directory, index_stride_bytes=STRIDE_BYTES_SMALL).read(from_seq))


def small_journal(tmp_path, batch_sizes=(5, 17, 1, 40, 3, 60, 25, 9, 33, 50) * 2):
    return write_journal(tmp_path / "j", batch_sizes, segment_size_bytes_max=SEGMENT_BYTES_SMALL,
                         index_stride_bytes=STRIDE_BYTES_SMALL)


@pytest.mark.parametrize("policy", list(FsyncPolicy))
def test_append_then_read_back_every_policy(tmp_path, policy):
    journal = write_journal(tmp_path / "j", [1, 10, 100], fsync_policy=policy)
    assert journal.last_cmd_id == 111
    journal.close()
    assert_intact(read_all(tmp_path / "j"), 111)


def test_segments_roll_at_the_size_limit(tmp_path):
    journal = small_journal(tmp_path)
    journal.close()
    segments = list_segments(tmp_path / "j")
    assert len(segments) > 3
    records = read_all(tmp_path / "j")
    by_cmd = {h.cmd_id: h for h, _ in records}
    for segment in segments:
        assert segment.path.stat().st_size <= SEGMENT_BYTES_SMALL
        first = by_cmd[segment.first_cmd_id]
        assert first.first_seq == segment.first_seq
        assert segment.name == segment_name(segment.first_cmd_id, segment.first_seq)
    for closed in segments[:-1]:
        assert index_path(closed).exists()


def test_read_from_every_seq_across_segments(tmp_path):
    journal = small_journal(tmp_path)
    journal.close()
    expected = expected_records(journal.last_cmd_id)
    assert any(first > last for _, first, last, _ in expected)  # records without events
    reader = JournalReader(tmp_path / "j", index_stride_bytes=STRIDE_BYTES_SMALL)
    for from_seq in range(1, journal.last_seq + 3):
        want = [r for r in expected if r[2] >= from_seq]
        got = list(reader.read(from_seq))
        assert [h.cmd_id for h, _ in got] == [r[0] for r in want], from_seq
        if got:
            assert got[0][1] == want[0][3]


def test_a_reader_holds_at_most_its_bound_of_segment_indexes(tmp_path):
    """INDEXES_CACHED_MAX: least recently used evicted, reads stay exact past the bound."""
    journal = small_journal(tmp_path)
    journal.close()
    segments = list_segments(tmp_path / "j")
    assert len(segments) > 3
    expected = expected_records(journal.last_cmd_id)
    reader = JournalReader(tmp_path / "j", index_stride_bytes=STRIDE_BYTES_SMALL, indexes_cached_max=2)
    for from_seq in (1, journal.last_seq // 2, 1, journal.last_seq):
        got = [h.cmd_id for h, _ in reader.read(from_seq)]
        assert got == [r[0] for r in expected if r[2] >= from_seq]
        assert len(reader._indexes) <= 2
    assert list(reader._indexes) == [s.name for s in segments[-2:]]  # the most recently used


def test_read_seeks_without_side_index_files(tmp_path):
    journal = small_journal(tmp_path)
    journal.close()
    for segment in list_segments(tmp_path / "j"):
        index_path(segment).unlink(missing_ok=True)
    index_path(list_segments(tmp_path / "j")[0]).write_bytes(b"garbage")  # ignored, rebuilt
    expected = expected_records(journal.last_cmd_id)
    middle_seq = journal.last_seq // 2
    got = [h.cmd_id for h, _ in read_all(tmp_path / "j", middle_seq)]
    assert got == [r[0] for r in expected if r[2] >= middle_seq]


def test_a_reader_reads_in_chunks_of_one_byte_or_more(tmp_path):
    journal = small_journal(tmp_path)
    journal.close()
    with pytest.raises(ValueError, match="read_chunk_bytes must be at least 1, not 0"):
        JournalReader(tmp_path / "j", read_chunk_bytes=0)  # it read nothing, for ever
    got = [h.cmd_id for h, _ in JournalReader(tmp_path / "j", read_chunk_bytes=1).read(1)]
    assert got == [r[0] for r in expected_records(journal.last_cmd_id)]


@given(st.lists(st.integers(1, 80), min_size=1, max_size=12), st.integers(1, 400))
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_random_batches_round_trip(tmp_path_factory, batch_sizes, from_seq):
    directory = tmp_path_factory.mktemp("j")
    journal = write_journal(directory, batch_sizes, segment_size_bytes_max=SEGMENT_BYTES_SMALL * 4,
                            index_stride_bytes=STRIDE_BYTES_SMALL)
    journal.close()
    assert_intact(read_all(directory), sum(batch_sizes))
    expected = [r[0] for r in expected_records(sum(batch_sizes)) if r[2] >= from_seq]
    assert [h.cmd_id for h, _ in read_all(directory, from_seq)] == expected


@pytest.mark.parametrize("kernel_scan_bytes_min", [1, 1 << 40], ids=["kernel", "reference"])
@given(st.lists(st.tuples(st.integers(1, 120), st.integers(0, 300), st.booleans()), min_size=2, max_size=10))
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_reader_keeps_indexing_a_growing_segment(tmp_path_factory, kernel_scan_bytes_min, rounds):
    """A reader that reads recent seqs of a segment still being written (a live projection,
    a batch at a time; a lookup that stops at its record) extends its index to where each
    read went: its next seek lands within a stride of what is new, instead of where its first
    read stopped (every later read then re-read the segment from there). Its entries never
    pass what it covers, even when a read stops mid-chunk, and the index it grows so equals
    one built in a single read."""
    directory = tmp_path_factory.mktemp("j")
    journal = Journal.open(directory, index_stride_bytes=STRIDE_BYTES_SMALL)
    records = Records()
    reader = JournalReader(directory, index_stride_bytes=STRIDE_BYTES_SMALL,
                           kernel_scan_bytes_min=kernel_scan_bytes_min)
    for batch_size, lookback_seqs, stop_at_first in rounds:
        journal.append_batch(records.batch(batch_size))
        from_seq = max(1, journal.last_seq - lookback_seqs)
        expected = [r[0] for r in expected_records(journal.last_cmd_id) if r[2] >= from_seq]
        [segment] = reader.segments()
        index = reader._index(segment)
        if stop_at_first:  # as a lookup of one record does
            read = reader.read(from_seq)
            assert next(read)[0].cmd_id == expected[0]
            read.close()
        else:
            assert [h.cmd_id for h, _ in reader.read(from_seq)] == expected
            assert index.covered_bytes == segment.path.stat().st_size
            assert index.seek(journal.last_seq)[0] >= index.covered_bytes - STRIDE_BYTES_SMALL - 2 * 512
        assert index.entries[-1][2] < max(index.covered_bytes, 1)  # a seek never lands past what is covered
    journal.close()
    list(reader.read(1))
    fresh = JournalReader(directory, index_stride_bytes=STRIDE_BYTES_SMALL)
    list(fresh.read(1))
    assert fresh._index(segment).entries == index.entries


def test_batches_breaking_the_contract_are_refused_and_nothing_written(tmp_path):
    journal = write_journal(tmp_path / "j", [3], segment_size_bytes_max=SEGMENT_BYTES_SMALL)
    records = Records(3, journal.last_seq)
    good = records.batch(2)
    with pytest.raises(ValueError, match="does not follow"):
        journal.append_batch([good[1]])  # skips cmd_id 4
    with pytest.raises(ValueError, match="does not follow"):
        journal.append_batch([msgspec.msgpack.encode([4, journal.last_seq + 5, 0])])  # seq gap
    with pytest.raises(ValueError, match="not a record"):
        journal.append_batch([b"\x01"])
    with pytest.raises(ValueError, match="exceeds segment_size_bytes_max"):
        journal.append_batch(Records(3, journal.last_seq).batch(200))
    journal.append_batch(good)
    journal.append_batch([])
    journal.close()
    assert_intact(read_all(tmp_path / "j"), 5)


def test_reopen_continues_where_it_stopped(tmp_path):
    small_journal(tmp_path).close()
    journal = Journal.open(tmp_path / "j", segment_size_bytes_max=SEGMENT_BYTES_SMALL)
    assert journal.recovery.truncated_bytes == 0
    last = journal.last_cmd_id
    journal.append_batch(Records(last, journal.last_seq).batch(30))
    journal.close()
    assert_intact(read_all(tmp_path / "j"), last + 30)


def test_one_writer_at_a_time(tmp_path):
    journal = Journal.open(tmp_path / "j")
    with pytest.raises(JournalLocked):
        Journal.open(tmp_path / "j")
    journal.close()
    Journal.open(tmp_path / "j").close()


def test_empty_last_segment_after_a_roll(tmp_path):
    journal = small_journal(tmp_path)
    journal.close()
    last_cmd_id, last_seq = journal.last_cmd_id, journal.last_seq
    (tmp_path / "j" / segment_name(last_cmd_id + 1, last_seq + 1)).touch()
    journal = Journal.open(tmp_path / "j", segment_size_bytes_max=SEGMENT_BYTES_SMALL)
    assert (journal.last_cmd_id, journal.last_seq) == (last_cmd_id, last_seq)
    journal.append_batch(Records(last_cmd_id, last_seq).batch(4))
    journal.close()
    assert_intact(read_all(tmp_path / "j"), last_cmd_id + 4)


# -- follow ---------------------------------------------------------------------------


def collect(iterator, count, out, done):
    for header, _ in iterator:
        out.append(header.cmd_id)
        if len(out) == count:
            break
    done.set()


def test_follow_sees_appends_from_another_thread(tmp_path):
    journal = Journal.open(tmp_path / "j", segment_size_bytes_max=SEGMENT_BYTES_SMALL)
    records = Records()
    journal.append_batch(records.batch(10))
    stop, done = threading.Event(), threading.Event()
    seen_in_process, seen_polling = [], []
    followers = [
        threading.Thread(target=collect, args=(journal.follow(5, stop=stop), 300,
                                               seen_in_process, done)),
        threading.Thread(target=collect, args=(journal.reader().follow(
            5, stop=stop, poll_interval_s=0.001), 300, seen_polling, threading.Event())),
    ]
    for follower in followers:
        follower.start()
    for _ in range(30):
        journal.append_batch(records.batch(10))
    for follower in followers:
        follower.join(timeout=30)
    stop.set()
    journal.close()
    expected = [r[0] for r in expected_records(310) if r[2] >= 5][:300]
    assert seen_in_process == expected
    assert seen_polling == expected


def test_follow_sees_appends_from_another_process(tmp_path):
    directory = tmp_path / "j"
    writer = subprocess.Popen(
        [sys.executable, str(WRITER), str(directory), "7", str(SEGMENT_BYTES_SMALL * 2), "40",
         "0.002"], stdout=subprocess.PIPE, text=True)
    stop = threading.Event()
    seen = []
    acked = []

    def watch_writer():
        acked.append(int(writer.communicate(timeout=120)[0].split()[-1]))
        for _ in range(30_000):  # then give the follower time to catch up
            if len(seen) >= acked[0]:
                break
            stop.wait(0.001)
        stop.set()

    watcher = threading.Thread(target=watch_writer)
    watcher.start()
    for header, payload in JournalReader(directory).follow(1, stop=stop, poll_interval_s=0.002):
        assert payload == make_payload(header.cmd_id, header.first_seq)
        seen.append(header.cmd_id)
    watcher.join()
    assert writer.returncode == 0
    assert seen == list(range(1, acked[0] + 1))


# -- recovery: torn tail and corruption -------------------------------------------------


def last_frame(directory):
    """Return (segment path, start offset, end offset) of the journal's last frame."""
    segments = list_segments(directory)
    records = list(JournalReader(directory).read(1))
    header, payload = records[-1]
    path = segments[-1].path
    end = path.stat().st_size
    return path, end - HEADER_SIZE_BYTES - len(payload), end


@pytest.mark.parametrize("cut_into_frame_bytes", [1, 4, 7, 8, 9, 40, -1])
def test_torn_tail_is_truncated_with_a_warning(tmp_path, caplog, cut_into_frame_bytes):
    journal = small_journal(tmp_path)
    journal.close()
    last_cmd_id = journal.last_cmd_id
    path, start, end = last_frame(tmp_path / "j")
    cut = start + cut_into_frame_bytes if cut_into_frame_bytes > 0 else end - 1
    os.truncate(path, cut)
    with caplog.at_level(logging.WARNING, logger="agentperp.ledger.journal"):
        journal = Journal.open(tmp_path / "j", segment_size_bytes_max=SEGMENT_BYTES_SMALL)
    report = journal.recovery
    assert (report.truncated_segment, report.truncated_offset) == (path, start)
    assert report.truncated_bytes == cut - start
    assert report.last_cmd_id == journal.last_cmd_id == last_cmd_id - 1
    assert path.name in caplog.text and f"offset {start}" in caplog.text
    assert f"dropping {cut - start} bytes" in caplog.text
    assert path.stat().st_size == start
    journal.append_batch(Records(journal.last_cmd_id, journal.last_seq).batch(3))
    journal.close()
    assert_intact(read_all(tmp_path / "j"), last_cmd_id + 2)


@pytest.mark.parametrize("damage", ["bad_crc", "zero_fill", "zeros_after"])
def test_torn_tail_variants(tmp_path, damage):
    journal = small_journal(tmp_path)
    journal.close()
    path, start, end = last_frame(tmp_path / "j")
    data = bytearray(path.read_bytes())
    if damage == "bad_crc":
        data[end - 1] ^= 0x55
    elif damage == "zero_fill":
        data[start + 20:end] = bytes(end - start - 20)
    else:
        data += bytes(4096)
    path.write_bytes(bytes(data))
    journal = Journal.open(tmp_path / "j", segment_size_bytes_max=SEGMENT_BYTES_SMALL)
    expected_last = journal.last_cmd_id if damage == "zeros_after" else None
    dropped = len(data) - (end if damage == "zeros_after" else start)
    assert journal.recovery.truncated_bytes == dropped
    journal.close()
    assert_intact(read_all(tmp_path / "j"), expected_last or 0)


def test_flipped_byte_mid_segment_is_refused_with_its_location(tmp_path):
    journal = small_journal(tmp_path)
    journal.close()
    segment = list_segments(tmp_path / "j")[-1]
    records = [(h, p) for h, p in read_all(tmp_path / "j") if h.cmd_id >= segment.first_cmd_id]
    assert len(records) >= 3
    offset = sum(HEADER_SIZE_BYTES + len(p) for _, p in records[:1])  # second frame
    data = bytearray(segment.path.read_bytes())
    data[offset + HEADER_SIZE_BYTES + 3] ^= 0x01
    segment.path.write_bytes(bytes(data))
    with pytest.raises(JournalCorrupt) as caught:
        Journal.open(tmp_path / "j", segment_size_bytes_max=SEGMENT_BYTES_SMALL)
    assert caught.value.path == segment.path and caught.value.offset == offset
    assert segment.name in str(caught.value) and "crc32c" in str(caught.value)
    assert segment.path.stat().st_size == len(data)  # nothing repaired


def test_flipped_byte_in_a_closed_segment_is_refused_by_readers(tmp_path):
    journal = small_journal(tmp_path)
    journal.close()
    first = list_segments(tmp_path / "j")[0]
    data = bytearray(first.path.read_bytes())
    data[len(data) // 2] ^= 0x80
    first.path.write_bytes(bytes(data))
    with pytest.raises(JournalCorrupt) as caught:
        read_all(tmp_path / "j")
    assert caught.value.path == first.path
    assert caught.value.offset <= len(data) // 2


def test_torn_closed_segment_is_corruption(tmp_path):
    journal = small_journal(tmp_path)
    journal.close()
    first = list_segments(tmp_path / "j")[0]
    os.truncate(first.path, first.path.stat().st_size - 3)
    index_path(first).unlink()
    with pytest.raises(JournalCorrupt, match="closed segment"):
        read_all(tmp_path / "j")


def test_duplicate_record_is_a_discontinuity(tmp_path):
    journal = small_journal(tmp_path, batch_sizes=(5,))
    journal.close()
    segment = list_segments(tmp_path / "j")[-1]
    data = segment.path.read_bytes()
    _, start, _ = last_frame(tmp_path / "j")
    segment.path.write_bytes(data + data[start:])  # a valid frame, written twice
    with pytest.raises(JournalCorrupt, match="discontinuity"):
        Journal.open(tmp_path / "j")


def test_missing_segment_is_a_discontinuity(tmp_path):
    journal = small_journal(tmp_path)
    journal.close()
    middle = list_segments(tmp_path / "j")[1]
    middle.path.unlink()
    with pytest.raises(JournalCorrupt, match="segment is missing"):
        read_all(tmp_path / "j")


def test_the_last_seq_estimate_reads_no_record_and_lands_near_the_end(tmp_path):
    journal = small_journal(tmp_path)  # records of like sizes, one event each: bytes track seqs
    last_seq = journal.last_seq
    journal.close()
    reader = JournalReader(tmp_path / "j")
    estimate = reader.last_seq_estimate()
    assert abs(estimate - last_seq) <= last_seq // 10
    assert reader.segment_end(list_segments(tmp_path / "j")[-1]).last_seq == last_seq  # the exact answer, by a scan
    (tmp_path / "empty").mkdir()
    assert JournalReader(tmp_path / "empty").last_seq_estimate() == 0
