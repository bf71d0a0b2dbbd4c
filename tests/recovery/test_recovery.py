"""Recovery, the one start-up path: snapshot + journal rebuild exactly the live state."""

from __future__ import annotations

import pytest

from engine.invariants import check
from engine.state import State, export_state, state_hash
from ledger import snapshots
from ledger.journal import JournalCorrupt
from ledger.recovery import RecoveryFailed, recover, replay_into
from tests.recovery import session


@pytest.fixture(scope="module")
def mix():
    return session.commands(300)


def test_full_replay_rebuilds_the_live_state(tmp_path, mix):
    live = session.write(tmp_path, mix)
    recovered = recover(tmp_path, session.CONFIG)
    try:
        assert recovered.snapshot_seq == 0
        assert state_hash(recovered.state) == state_hash(live)
        check(recovered.state)
        assert recovered.journal.last_cmd_id == len(mix)
    finally:
        recovered.journal.close()


def test_snapshot_plus_tail_rebuilds_the_live_state(tmp_path, mix):
    live = session.write(tmp_path, mix, snapshot_every=400)
    assert len(snapshots.list_snapshots(tmp_path / "snapshots")) == snapshots.KEEP_DEFAULT
    recovered = recover(tmp_path, session.CONFIG)
    try:
        assert 0 < recovered.snapshot_seq < live.last_seq
        assert state_hash(recovered.state) == state_hash(live)
        check(recovered.state)
    finally:
        recovered.journal.close()


def test_a_damaged_snapshot_falls_back_to_an_older_one(tmp_path, mix):
    live = session.write(tmp_path, mix, snapshot_every=400)
    newest, older = snapshots.list_snapshots(tmp_path / "snapshots")[:2]
    data = bytearray(newest.read_bytes())
    data[len(data) // 2] ^= 0xFF
    newest.write_bytes(bytes(data))
    recovered = recover(tmp_path, session.CONFIG)
    try:
        assert recovered.skipped_snapshots and "crc32c" in recovered.skipped_snapshots[0]
        assert recovered.snapshot_seq == int(older.stem)
        assert state_hash(recovered.state) == state_hash(live)
    finally:
        recovered.journal.close()


def test_a_snapshot_ahead_of_the_journal_is_not_trusted(tmp_path, mix):
    session.write(tmp_path, mix[: len(mix) // 2], snapshot_every=200)
    ahead = session.replay_fresh(mix, len(mix))
    snapshots.write_snapshot(tmp_path / "snapshots", export_state(ahead), len(mix), session.CONFIG)
    recovered = recover(tmp_path, session.CONFIG)
    try:
        assert any("beyond the journal" in reason for reason in recovered.skipped_snapshots)
        assert recovered.state.last_seq == recovered.journal.last_seq
    finally:
        recovered.journal.close()


def test_a_state_that_drifts_from_the_checkpoints_stops_replay(tmp_path, mix):
    """Replay proves itself against the journal's Checkpoint hashes, naming the seq."""
    session.write(tmp_path, mix)
    drifted = State(session.CONFIG)
    drifted.fees_e6 = 1  # a state this journal did not build
    with pytest.raises(RecoveryFailed, match="checkpoint at seq"):
        replay_into(drifted, tmp_path / "journal")


def test_mid_journal_corruption_stops_start_up_with_its_location(tmp_path, mix):
    session.write(tmp_path, mix)
    segment = sorted((tmp_path / "journal").glob("*.seg"))[0]
    data = bytearray(segment.read_bytes())
    data[len(data) // 3] ^= 0x5A
    segment.write_bytes(bytes(data))
    with pytest.raises(JournalCorrupt) as error:
        recovered = recover(tmp_path, session.CONFIG)
        recovered.journal.close()
    assert segment.name in str(error.value)
