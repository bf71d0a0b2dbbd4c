"""verify in stretches from the data directory's snapshots: the same proof as one pass.

A generated session with a snapshot every 300 commands (as the venue writes them: durable
first, with the proof of their journal) is verified with and without its snapshots; the
results must agree in everything but time. A snapshot that does not hold the state the
journal builds, or that cannot be loaded, is not trusted: verify carries on in one pass and
says why. A divergence after a seam is located exactly where one pass locates it.
"""

from __future__ import annotations

import multiprocessing
import shutil

import msgspec
import pytest

from engine import commands as cmd
from engine import events as ev
from engine.rejections import Rejected
from engine.markets import default_config
from engine.state import export_state, state_hash
from ledger import snapshots
from ledger.codec import HEADER_SIZE_BYTES, decode_header
from ledger.journal import Journal, JournalReader, list_segments
from ledger.records import encode_record
from ledger.recovery import SNAPSHOT_DIR, recover
from replay import cli, verify as verify_module
from replay.errors import JournalDamaged
from replay.generate import generate
from replay.rebuild import rebuild
from replay.source import ReplayJournal
from replay.verify import verify
from tests.replay.conftest import rewrite_journal

CONFIG = default_config(checkpoint_every_events=500)
EVENTS = 6_000
SNAPSHOT_EVERY = 300  # commands: ~18 snapshots written, KEEP_DEFAULT + SPREAD_KEEP_DEFAULT kept


@pytest.fixture(scope="module")
def snapshotted(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("snapshotted")
    live = generate(data_dir, EVENTS, seed=5, config=CONFIG, progress=False, jump_probability=0.02,
                    snapshot_every_commands=SNAPSHOT_EVERY)
    return data_dir, live


@pytest.fixture(autouse=True)
def short_stretches(monkeypatch):
    monkeypatch.setattr(verify_module, "STRETCH_EVENTS_MIN", 500)


def _same_proof(split, one_pass) -> None:
    for field in ("ok", "records", "events", "checkpoints", "last_seq", "last_cmd_id", "state_hash",
                  "invariant_checks", "divergence"):
        assert getattr(split, field) == getattr(one_pass, field), field


def _stretch_notes(result) -> list[str]:
    return [note for note in result.notes if "stretches at once" in note]


def test_the_generator_writes_snapshots_as_the_venue_does(snapshotted):
    data_dir, live = snapshotted
    paths = snapshots.list_snapshots(data_dir / SNAPSHOT_DIR)
    assert len(paths) == snapshots.KEEP_DEFAULT + snapshots.SPREAD_KEEP_DEFAULT
    # Each one belongs to the journal: recovery starts from the newest and ends in the live state.
    recovered = recover(data_dir, CONFIG)
    try:
        assert recovered.snapshot_seq == int(paths[0].stem) > 0
        assert state_hash(recovered.state) == live.state_hash
    finally:
        recovered.journal.close()


@pytest.mark.parametrize("workers", [2, 3, 5])
def test_stretches_prove_what_one_pass_proves(snapshotted, workers):
    data_dir, live = snapshotted
    one_pass = verify(data_dir, use_snapshots=False)
    split = verify(data_dir, workers=workers)
    assert split.ok and one_pass.ok
    _same_proof(split, one_pass)
    assert split.state_hash == live.state_hash and split.events == live.events
    [note] = _stretch_notes(split)
    assert f"in {workers} stretches" in note
    assert (split.stretches, one_pass.stretches) == (workers, 1)
    assert not multiprocessing.active_children()


def test_one_worker_or_no_snapshots_is_one_pass(snapshotted):
    data_dir, _ = snapshotted
    assert not _stretch_notes(verify(data_dir, workers=1))
    assert not _stretch_notes(verify(data_dir, workers=4, use_snapshots=False))


def _copy(snapshotted, target):
    data_dir, _ = snapshotted
    shutil.copytree(data_dir, target)
    return target


def _seam_snapshot(data_dir):
    """The snapshot two workers split the journal at."""
    journal = ReplayJournal(data_dir)
    journal.config()  # reads the genesis: the snapshots' proofs name its journal_id
    [seam] = verify_module._seams(journal, 2, [])
    return seam.path


def _break_a_checkpoint(data_dir, target, where) -> int:
    """Copy ``data_dir`` (journal and snapshots) to ``target`` with the first checkpoint whose
    seq passes ``where`` holding a wrong hash; its seq."""
    broken = {}

    def change(record):
        events = []
        for e in record.events:
            if not broken and type(e) is ev.Checkpoint and where(e.seq):
                e = msgspec.structs.replace(e, state_hash="0" * 64)
                broken["seq"] = e.seq
            events.append(e)
        return msgspec.structs.replace(record, events=events)

    rewrite_journal(data_dir, target, change)  # the same records but one: the snapshots' proofs hold
    shutil.copytree(data_dir / SNAPSHOT_DIR, target / SNAPSHOT_DIR)
    return broken["seq"]


def test_a_snapshot_that_does_not_hold_the_journals_state_is_not_used(snapshotted, tmp_path):
    data_dir = _copy(snapshotted, tmp_path / "data")
    path = _seam_snapshot(data_dir)
    meta = snapshots.read_meta(path)
    state, _ = snapshots.load_snapshot(path, CONFIG)
    exported = export_state(state)
    exported["scalars"]["insurance_e6"] += 1  # a state the journal never built, hashed as its own
    path.unlink()
    snapshots.write_snapshot(path.parent, exported, meta.cmd_id, CONFIG, journal_id=meta.journal_id,
                             digest=meta.record_digest)
    assert snapshots.load_snapshot(path, CONFIG)[1].state_hash != meta.state_hash  # loads: it checks out by itself

    result = verify(data_dir, workers=2)
    _same_proof(result, verify(data_dir, use_snapshots=False))
    assert result.ok
    assert not _stretch_notes(result) and result.stretches == 1
    assert any(f"{path} does not hold the state the journal builds at seq {meta.seq}" in note for note in result.notes)
    assert not multiprocessing.active_children()


def test_a_snapshot_that_does_not_load_is_verified_here(snapshotted, tmp_path):
    data_dir = _copy(snapshotted, tmp_path / "data")
    path = _seam_snapshot(data_dir)
    meta = snapshots.read_meta(path)
    # A whole, crc-valid file whose state is not a state: the stretch's process cannot load it.
    payload = msgspec.msgpack.encode([meta, {"scalars": "not a state"}])
    path.write_bytes(snapshots.MAGIC + snapshots.HEADER.pack(len(payload), snapshots.crc32c.crc32c(payload)) + payload)

    result = verify(data_dir, workers=2)
    assert result.ok
    _same_proof(result, verify(data_dir, use_snapshots=False))
    assert any(f"from the snapshot at seq {meta.seq} was not verified apart: SnapshotInvalid" in note
               for note in result.notes)
    assert not multiprocessing.active_children()


def test_a_foreign_snapshot_is_not_used(snapshotted, tmp_path):
    data_dir = _copy(snapshotted, tmp_path / "data")
    other = tmp_path / "other"
    generate(other, 1_500, seed=6, config=CONFIG, progress=False, snapshot_every_commands=SNAPSHOT_EVERY)
    for path in snapshots.list_snapshots(data_dir / SNAPSHOT_DIR):
        path.unlink()
    for path in snapshots.list_snapshots(other / SNAPSHOT_DIR):
        shutil.copy(path, data_dir / SNAPSHOT_DIR / path.name)

    result = verify(data_dir, workers=2)
    assert result.ok and not _stretch_notes(result)
    assert any("snapshot not used" in note and "belongs to journal" in note for note in result.notes)


@pytest.mark.parametrize("broken", ["checkpoint", "event"])
def test_a_divergence_after_a_seam_is_located_as_one_pass_locates_it(snapshotted, tmp_path, broken):
    data_dir, _ = snapshotted
    after_seq = int(_seam_snapshot(data_dir).stem) + 200  # past the seam two workers split at
    open_at_end = set(rebuild(ReplayJournal(data_dir)).position_row)
    target = {}

    def change(record):
        events = []
        for e in record.events:
            if not target and e.seq > after_seq:
                if broken == "checkpoint" and type(e) is ev.Checkpoint:
                    e = msgspec.structs.replace(e, state_hash="0" * 64)
                    target["seq"] = e.seq
                elif (broken == "event" and type(e) is ev.PositionOpened and e.position_id in open_at_end
                      and e.seq < EVENTS - CONFIG.checkpoint_every_events):
                    # A rate nobody agreed, on a position open to the end (and so at the next
                    # checkpoint): the books still balance, only the hash and the re-decision tell.
                    e = msgspec.structs.replace(e, funding_rate_e9=e.funding_rate_e9 + 1)
                    target["seq"] = e.seq
            events.append(e)
        return msgspec.structs.replace(record, events=events)

    rewrite_journal(data_dir, tmp_path, change)  # the same records but one: the snapshots' proofs hold
    shutil.copytree(data_dir / SNAPSHOT_DIR, tmp_path / SNAPSHOT_DIR)

    split = verify(tmp_path, CONFIG, workers=2)
    one_pass = verify(tmp_path, CONFIG, use_snapshots=False)
    assert not split.ok and not one_pass.ok
    _same_proof(split, one_pass)
    assert split.divergence.seq == target["seq"]
    assert _stretch_notes(split) == []  # it failed: no claim that the stretches proved it
    assert not multiprocessing.active_children()


def test_the_cli_takes_workers_and_no_snapshots(snapshotted, capsys):
    data_dir, live = snapshotted
    assert cli.main(["verify", str(data_dir), "--workers", "2", "--quiet"]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert live.state_hash in out and "in 2 stretches at once" in out
    assert cli.main(["verify", str(data_dir), "--no-snapshots", "--quiet"]) == cli.EXIT_OK
    assert "stretches at once" not in capsys.readouterr().out
    assert cli.main(["verify", str(data_dir), "--workers", "0"]) == cli.EXIT_ERROR
    assert "--workers must be at least 1" in capsys.readouterr().err


def test_damage_after_the_seam_is_reported_as_one_pass_reports_it(snapshotted, tmp_path):
    data_dir = _copy(snapshotted, tmp_path / "data")
    seam_seq = int(_seam_snapshot(data_dir).stem)
    segment = list_segments(data_dir / "journal")[-1].path
    offset = _damage_a_frame(segment, lambda header: header.first_seq > seam_seq + 300)

    with pytest.raises(JournalDamaged) as split:
        verify(data_dir, workers=2)
    with pytest.raises(JournalDamaged) as one_pass:
        verify(data_dir, use_snapshots=False)
    assert str(split.value) == str(one_pass.value)
    assert split.value.path == segment and split.value.offset == offset
    assert not multiprocessing.active_children()


def _damage_a_frame(segment, where) -> int | None:
    """Flip bytes in the payload of the first frame of ``segment`` whose header passes
    ``where`` (its crc no longer checks out); its offset (None: no such frame)."""
    offset = next((offset for offset, header in _frames(segment) if where(header)), None)
    if offset is not None:
        data = bytearray(segment.read_bytes())
        data[offset + 10:offset + 14] = bytes(b ^ 0xFF for b in data[offset + 10:offset + 14])
        segment.write_bytes(bytes(data))
    return offset


def _frames(segment):
    """``(offset, header)`` of each frame of ``segment``."""
    data = segment.read_bytes()
    offset = 0
    while offset < len(data):
        length = int.from_bytes(data[offset:offset + 4], "little")
        yield offset, decode_header(data[offset + HEADER_SIZE_BYTES:offset + HEADER_SIZE_BYTES + length])
        offset += HEADER_SIZE_BYTES + length


def test_a_stretch_with_nothing_after_its_snapshot_ends_where_it_began(snapshotted):
    data_dir, live = snapshotted
    journal = ReplayJournal(data_dir)
    state = rebuild(journal, CONFIG)  # the journal's last state, as a snapshot at its end would hold
    found = verify_module._verify_stretch(journal, state, after_cmd_id=live.records)
    assert (found.last_cmd_id, found.last_seq, found.failure) == (live.records, live.events, None)


def test_snapshots_that_split_the_journal_unevenly_leave_it_to_one_pass(snapshotted, tmp_path):
    data_dir = _copy(snapshotted, tmp_path / "data")
    _, live = snapshotted
    paths = snapshots.list_snapshots(data_dir / SNAPSHOT_DIR)
    early = min(paths, key=lambda path: abs(int(path.stem) - live.events // 4))
    for path in paths:
        if path != early:
            path.unlink()
    result = verify(data_dir, workers=2)
    assert result.ok and result.stretches == 1 and not _stretch_notes(result)
    assert any(f"one pass: the snapshot at seq {int(early.stem):,} would leave one stretch" in note
               for note in result.notes)


def test_a_divergence_far_after_a_seam_is_located_from_its_snapshot(snapshotted, tmp_path, monkeypatch):
    data_dir, _ = snapshotted
    seam_seq = int(_seam_snapshot(data_dir).stem)
    after_seq = seam_seq + 2 * CONFIG.checkpoint_every_events  # a checkpoint after the seam matches first
    broken_seq = _break_a_checkpoint(data_dir, tmp_path, lambda seq: seq > after_seq)
    starts = []
    real_rebuild = verify_module.rebuild

    def rebuild_seen(*args, start=None, **kwargs):  # the real rebuild; only where it starts is noted
        starts.append(start.last_seq if start is not None else 0)
        return real_rebuild(*args, start=start, **kwargs)

    monkeypatch.setattr(verify_module, "rebuild", rebuild_seen)
    split = verify(tmp_path, CONFIG, workers=2)
    assert starts == [seam_seq]  # rebuilt from the proven snapshot, not from seq 1
    one_pass = verify(tmp_path, CONFIG, use_snapshots=False)
    assert starts == [seam_seq, 0]
    _same_proof(split, one_pass)
    assert split.divergence.seq == broken_seq


def test_rebuild_goes_on_from_a_snapshots_state(snapshotted):
    data_dir, live = snapshotted
    path = _seam_snapshot(data_dir)
    journal = ReplayJournal(data_dir)
    state = rebuild(journal, CONFIG, start=snapshots.load_snapshot(path, CONFIG)[0])
    assert state_hash(state) == live.state_hash
    with pytest.raises(ValueError, match="cannot rebuild to seq"):
        rebuild(journal, CONFIG, seq=int(path.stem) - 1, start=snapshots.load_snapshot(path, CONFIG)[0])


def test_a_failure_before_the_first_seam_is_reported_as_one_pass_reports_it(snapshotted, tmp_path):
    data_dir, _ = snapshotted
    seam_seq = int(_seam_snapshot(data_dir).stem)
    broken_seq = _break_a_checkpoint(data_dir, tmp_path, lambda seq: seq < seam_seq - CONFIG.checkpoint_every_events)
    split = verify(tmp_path, CONFIG, workers=2)
    _same_proof(split, verify(tmp_path, CONFIG, use_snapshots=False))
    assert not split.ok and split.divergence.seq == broken_seq and split.state_hash
    assert not multiprocessing.active_children()


def test_records_without_events_after_the_last_seam_are_counted(tmp_path):
    """A journal that ends in rejections, with a snapshot among them: the last stretch holds
    records and no event, and counts them as one pass does."""
    data_dir = tmp_path / "data"
    generate(data_dir, 3_000, seed=5, config=CONFIG, progress=False, snapshot_every_commands=0)
    journal = ReplayJournal(data_dir)
    journal.config()
    state = rebuild(journal, CONFIG)

    def rejections(writer, count):
        first = writer.last_cmd_id + 1
        return [encode_record(cmd_id, 1 << 62, cmd.Deposit("nobody", 1, f"r{cmd_id}"),
                              Rejected("X", "refused"), writer.last_seq) for cmd_id in range(first, first + count)]

    with Journal.open(data_dir / "journal", segment_size_bytes_max=4_096) as writer:
        writer.append_batch(rejections(writer, 1))  # rolls: the rejections get segments of their own
    with Journal.open(data_dir / "journal") as writer:
        batch = rejections(writer, 200)
        writer.append_batch(batch)
        snapshots.write_snapshot(data_dir / SNAPSHOT_DIR, export_state(state), writer.last_cmd_id, CONFIG,
                                 journal_id=journal.genesis.journal_id, digest=snapshots.record_digest(batch[-1]))
        for _ in range(20):
            writer.append_batch(rejections(writer, 500))
        last_cmd_id = writer.last_cmd_id

    split = verify(data_dir, CONFIG, workers=2)
    one_pass = verify(data_dir, CONFIG, use_snapshots=False)
    assert split.stretches == 2  # the seam is taken (the journal's end is estimated from its bytes)
    _same_proof(split, one_pass)
    assert split.records == split.last_cmd_id == last_cmd_id


def test_a_seam_whose_proof_meets_damage_is_not_used(snapshotted, tmp_path):
    src, _ = snapshotted
    data_dir = tmp_path / "data"
    payloads = [payload for _, payload in JournalReader(src / "journal").read(0)]
    with Journal.open(data_dir / "journal", segment_size_bytes_max=256 * 1024) as writer:
        for start in range(0, len(payloads), 100):
            writer.append_batch(payloads[start:start + 100])
    shutil.copytree(src / SNAPSHOT_DIR, data_dir / SNAPSHOT_DIR)
    seam = _seam_snapshot(data_dir)
    cmd_id = snapshots.read_meta(seam).cmd_id
    damaged = [_damage_a_frame(segment.path, lambda header: header.cmd_id == cmd_id - 3)
               for segment in list_segments(data_dir / "journal")]
    assert sum(offset is not None for offset in damaged) == 1  # a few records before the seam's, in one segment

    with pytest.raises(JournalDamaged) as split:
        verify(data_dir, workers=2)
    with pytest.raises(JournalDamaged) as one_pass:
        verify(data_dir, use_snapshots=False)
    assert str(split.value) == str(one_pass.value)
    assert not multiprocessing.active_children()
