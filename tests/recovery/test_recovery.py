"""Recovery, the one start-up path: snapshot + journal rebuild exactly the live state."""

from __future__ import annotations

import pytest

from engine.invariants import check
from engine.state import State, export_state, state_hash
from ledger import snapshots
from ledger.journal import JournalCorrupt
from ledger.genesis import journal_config
from ledger.recovery import RecoveryFailed, recover, replay_into, snapshot_within
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
    written = len(mix) // 400
    assert written > snapshots.KEEP_DEFAULT
    assert len(snapshots.list_snapshots(tmp_path / "snapshots")) == min(
        written, snapshots.KEEP_DEFAULT + snapshots.SPREAD_KEEP_DEFAULT)
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


def test_a_snapshot_ahead_of_the_journal_is_not_trusted_and_deleted(tmp_path, mix):
    session.write(tmp_path, mix[: len(mix) // 2], snapshot_every=200)
    ahead = session.replay_fresh(mix, len(mix))
    path = snapshots.write_snapshot(tmp_path / "snapshots", export_state(ahead), len(mix), session.CONFIG)
    recovered = recover(tmp_path, session.CONFIG)
    try:
        assert any("beyond the journal" in reason for reason in recovered.skipped_snapshots)
        assert recovered.state.last_seq == recovered.journal.last_seq
        assert not path.exists()  # the venue will write other records at those seqs
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


def _record_payload(data_dir, cmd_id: int) -> bytes:
    from ledger.journal import JournalReader

    return next(p for h, p in JournalReader(data_dir / "journal").read(0) if h.cmd_id == cmd_id)


def test_a_snapshot_without_proof_of_its_journal_is_ignored(tmp_path, mix):
    """Snapshots written before they carried a proof (or with none) are not trusted."""
    live = session.write(tmp_path, mix[:200])
    snapshots.write_snapshot(tmp_path / "snapshots", export_state(live), 200, session.CONFIG)
    recovered = recover(tmp_path, session.CONFIG)
    try:
        assert recovered.snapshot_seq == 0
        assert any("carries no proof" in reason for reason in recovered.skipped_snapshots)
        assert state_hash(recovered.state) == state_hash(live)
    finally:
        recovered.journal.close()


def test_a_snapshot_of_another_journal_is_ignored(tmp_path, mix):
    live = session.write(tmp_path, mix[:200])
    digest = snapshots.record_digest(_record_payload(tmp_path, 200))
    snapshots.write_snapshot(tmp_path / "snapshots", export_state(live), 200, session.CONFIG,
                             journal_id="f" * 32, digest=digest)
    recovered = recover(tmp_path, session.CONFIG)
    try:
        assert recovered.snapshot_seq == 0
        assert any("belongs to journal ffff" in reason for reason in recovered.skipped_snapshots)
    finally:
        recovered.journal.close()


def test_a_snapshot_of_another_history_at_the_same_seqs_is_ignored(tmp_path, mix):
    """Same journal, same seq and cmd_id, but the record there is not the one it followed."""
    other = tmp_path / "other"
    elsewhere = session.write(other, [(command, ts_ns + 1) for command, ts_ns in mix[:200]])
    digest = snapshots.record_digest(_record_payload(other, 200))
    here = tmp_path / "here"
    live = session.write(here, mix[:200])
    assert elsewhere.last_seq == live.last_seq
    snapshots.write_snapshot(here / "snapshots", export_state(elsewhere), 200, session.CONFIG, digest=digest)
    recovered = recover(here, session.CONFIG)
    try:
        assert recovered.snapshot_seq == 0
        assert any("another history" in reason for reason in recovered.skipped_snapshots)
        assert state_hash(recovered.state) == state_hash(live)
    finally:
        recovered.journal.close()


def test_a_snapshot_with_its_proof_is_used(tmp_path, mix):
    live = session.write(tmp_path, mix[:200])
    digest = snapshots.record_digest(_record_payload(tmp_path, 200))
    snapshots.write_snapshot(tmp_path / "snapshots", export_state(live), 200, session.CONFIG, digest=digest)
    recovered = recover(tmp_path, session.CONFIG)
    try:
        assert recovered.snapshot_seq == live.last_seq and not recovered.skipped_snapshots
    finally:
        recovered.journal.close()


def test_the_snapshot_writer_holds_at_most_one_copy(tmp_path, mix):
    """SnapshotWriter.COPIES_MAX: a copy while one waits for its batch (or is being written)
    is skipped; none is written before submit (the sequencer's: after the batch's fsync)."""
    live = session.replay_fresh(mix, 50)
    writer = snapshots.SnapshotWriter(tmp_path / "snapshots")
    try:
        first = writer.copy(live, 50, b"record 50")
        assert first is not None and first.seq == live.last_seq
        assert writer.copy(live, 50, b"record 50") is None  # at the bound
        assert snapshots.list_snapshots(tmp_path / "snapshots") == []  # copied, not written
        writer.drop(first)  # its batch never became durable
        second = writer.copy(live, 50, b"record 50")
        assert second is not None
        writer.submit(second).result()
        assert writer.wait_written(0) and writer.copy(live, 50, b"record 50") is not None
        assert [int(p.stem) for p in snapshots.list_snapshots(tmp_path / "snapshots")] == [live.last_seq]
    finally:
        writer.close()


def test_a_replica_starts_from_the_newest_proven_snapshot_within_its_window(tmp_path, mix):
    """``snapshot_within``: what a reconcile's replica starts from (the settlement checkpoint
    as the window's end): never a snapshot outside the window, never a damaged one."""
    live = session.write(tmp_path, mix, snapshot_every=400)
    paths = snapshots.list_snapshots(tmp_path / "snapshots")  # newest first
    seqs = [snapshots.read_meta(path).seq for path in paths]
    assert len(seqs) >= 2 and seqs == sorted(seqs, reverse=True)
    genesis = journal_config(tmp_path / "journal").genesis

    def within(after_seq: int, to_seq: int):
        return snapshot_within(tmp_path / "snapshots", session.CONFIG, tmp_path / "journal", genesis, after_seq, to_seq)

    newest, older = seqs[0], seqs[1]
    assert within(0, 10**12).last_seq == newest
    assert within(0, newest - 1).last_seq == older  # the newest lies beyond the checkpoint
    assert within(newest, 10**12) is None  # the replica is already at (or past) every snapshot
    data = bytearray(paths[0].read_bytes())
    data[len(data) // 2] ^= 0xFF
    paths[0].write_bytes(bytes(data))
    assert within(0, 10**12).last_seq == older  # a damaged snapshot is passed over
    replica = within(0, 10**12)
    replay_into(replica, tmp_path / "journal")  # from the snapshot, the journal's checkpoints still agree
    assert state_hash(replica) == state_hash(live)


def test_replay_into_stops_at_to_seq_inside_a_record(tmp_path, mix):
    live = session.write(tmp_path, mix)
    middle = live.last_seq // 2
    state = State(session.CONFIG)
    replay_into(state, tmp_path / "journal", to_seq=middle)
    assert state.last_seq == middle  # the event at middle applied, none after it, whatever record it is in
    replay_into(state, tmp_path / "journal")
    assert state_hash(state) == state_hash(live)
