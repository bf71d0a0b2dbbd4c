"""Bad input gets a clear error: no journal, a damaged journal, a journal from a newer version."""

from __future__ import annotations

import msgspec
import pytest

from ledger.journal import list_segments
from replay import cli
from replay.errors import JournalDamaged, JournalTooNew, NotAJournal
from replay.source import ReplayJournal
from replay.verify import verify
from tests.replay.conftest import copy_journal, rewrite_journal


def test_missing_path_file_and_empty_dir(tmp_path):
    with pytest.raises(NotAJournal, match="no such file"):
        ReplayJournal(tmp_path / "nope")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(NotAJournal, match="a file, not a directory"):
        ReplayJournal(tmp_path / "notes.txt")
    with pytest.raises(NotAJournal, match="no segment files"):
        ReplayJournal(tmp_path)


def test_data_dir_and_journal_dir_both_open(session_journal):
    by_data = ReplayJournal(session_journal.data_dir)
    by_journal = ReplayJournal(session_journal.data_dir / "journal")
    assert by_data.directory == by_journal.directory
    assert by_data.last() == (session_journal.live.records, session_journal.live.events)


# read_ahead=True: the same errors when the read-ahead process meets the damage (it ends
# without its end mark, and the sequential pass over the same records raises what and where).
@pytest.mark.parametrize("read_ahead", [False, True])
def test_a_segment_of_garbage_is_damage_with_its_location(tmp_path, read_ahead):
    (tmp_path / "00000000000000000001-00000000000000000001.seg").write_bytes(b"this is not a journal at all" * 40)
    with pytest.raises(JournalDamaged) as caught:
        verify(tmp_path, read_ahead=read_ahead)
    assert caught.value.path.name.endswith(".seg") and caught.value.offset == 0
    assert "journal corrupt" in str(caught.value)


@pytest.mark.parametrize("read_ahead", [False, True])
def test_corruption_mid_journal_names_segment_and_offset(session_journal, tmp_path, read_ahead):
    data_dir = copy_journal(session_journal, tmp_path / "copy")
    segment = list_segments(data_dir / "journal")[0].path
    data = bytearray(segment.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4] = bytes(b ^ 0xFF for b in data[middle:middle + 4])
    segment.write_bytes(bytes(data))
    with pytest.raises(JournalDamaged) as caught:
        verify(data_dir, session_journal.config, read_ahead=read_ahead)
    assert caught.value.path == segment
    assert 0 < caught.value.offset <= middle
    assert cli.main(["verify", str(data_dir), "--quiet"]) == 2


@pytest.mark.parametrize("read_ahead", [False, True])
def test_unknown_event_tag_says_newer_version(session_journal, tmp_path, capsys, read_ahead):
    def change(record):
        if record.cmd_id == 50:
            raw = msgspec.msgpack.encode(record)
            return msgspec.Raw(raw.replace(b"deposited.v1", b"deposited.v9"))
        return record

    rewrite_journal(session_journal.data_dir, tmp_path, change)
    with pytest.raises(JournalTooNew) as caught:
        verify(tmp_path, session_journal.config, read_ahead=read_ahead)
    assert caught.value.tag == "deposited.v9" and caught.value.cmd_id == 50
    assert "newer agentperp" in str(caught.value)
    assert cli.main(["verify", str(tmp_path), "--quiet"]) == 2
    assert "deposited.v9" in capsys.readouterr().err


def test_unknown_command_tag_is_named(session_journal, tmp_path):
    def change(record):
        if record.cmd_id == 7:
            return msgspec.Raw(msgspec.msgpack.encode(record).replace(b"deposit.v1", b"deposit.v7"))
        return record

    rewrite_journal(session_journal.data_dir, tmp_path, change)
    with pytest.raises(JournalTooNew, match="command tag 'deposit.v7'"):
        list(ReplayJournal(tmp_path).records())
