"""Ops views: journal info and check."""

from __future__ import annotations

import os

import msgspec
from journal_testkit import Records

from ledger import inspect
from ledger.journal import Journal, list_segments


def build(directory, batches=(40, 60, 70, 30)):
    journal = Journal.open(directory, segment_size_bytes_max=16 * 1024)
    records = Records()
    for size in batches:
        journal.append_batch(records.batch(size))
    journal.close()
    return journal


def test_info_of_a_journal_with_snapshots(tmp_path):
    journal = build(tmp_path / "j")
    (tmp_path / "j" / "snapshots").mkdir()
    (tmp_path / "j" / "snapshots" / "00000000000000000100.snap").write_bytes(b"x" * 10)
    result = inspect.info(tmp_path / "j")
    assert result.first_cmd_id == 1 and result.last_cmd_id == journal.last_cmd_id == 200
    assert result.first_seq == 1 and result.last_seq == journal.last_seq
    assert result.records_count == 200 and result.events_count == journal.last_seq
    assert len(result.segments) == len(list_segments(tmp_path / "j")) > 1
    assert result.size_bytes == sum(s.path.stat().st_size for s in list_segments(tmp_path / "j"))
    assert [s.name for s in result.snapshots] == ["00000000000000000100.snap"]
    text = inspect.format_info(result)
    assert "1..200" in text and "snapshots 1" in text and result.segments[0].name in text


def test_info_of_an_empty_directory(tmp_path):
    Journal.open(tmp_path / "j").close()
    result = inspect.info(tmp_path / "j")
    assert result.records_count == 0 and result.snapshots == []
    assert "0 records" in inspect.format_info(result)


def test_check_passes_and_decodes(tmp_path):
    build(tmp_path / "j")
    decoded = []
    result = inspect.check(tmp_path / "j", decode=lambda p: decoded.append(msgspec.msgpack.decode(p)))
    assert result.ok and result.records_count == 200 == len(decoded)
    assert inspect.format_check(result).startswith("OK")


def test_check_reports_decode_failures(tmp_path):
    build(tmp_path / "j")

    def picky(payload):
        if msgspec.msgpack.decode(payload)[0] % 50 == 0:
            raise ValueError("unknown tag")

    result = inspect.check(tmp_path / "j", decode=picky)
    assert not result.ok and result.decode_failures_count == 4
    assert result.decode_failures[0].cmd_id == 50
    assert "cmd_id 50: ValueError: unknown tag" in inspect.format_check(result)


def test_check_locates_corruption_and_reports_torn_tail(tmp_path):
    build(tmp_path / "j")
    last = list_segments(tmp_path / "j")[-1]
    os.truncate(last.path, last.path.stat().st_size - 5)
    result = inspect.check(tmp_path / "j")
    assert result.ok and result.torn_tail_bytes > 0
    assert inspect.info(tmp_path / "j").torn_tail_bytes == result.torn_tail_bytes
    assert "torn tail" in inspect.format_check(result)

    first = list_segments(tmp_path / "j")[0]
    data = bytearray(first.path.read_bytes())
    data[100] ^= 0xFF
    first.path.write_bytes(bytes(data))
    result = inspect.check(tmp_path / "j")
    assert not result.ok
    assert result.corruption.path == first.path and result.corruption.offset <= 100
    text = inspect.format_check(result)
    assert text.startswith("FAILED") and f"{first.path} at offset" in text and "hint:" in text
