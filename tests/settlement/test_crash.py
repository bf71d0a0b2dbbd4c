"""Kill the projection anywhere — just before a transaction is sent, just after it landed,
or while the checkpoint is written — and run it again: the chain ends exactly where an
uninterrupted run ends (nothing settled twice, nothing skipped)."""

from __future__ import annotations

import asyncio

import pytest
from solders.pubkey import Pubkey

from adapters.solana.backend import TransientError
from adapters.solana.backend_litesvm import LiteSvmBackend
from venue.settlement import litesvm_backend
from adapters.solana.checkpoint import CheckpointStore
from adapters.solana.projection import SettlementProjection
from adapters.solana.reconcile import reconcile
from adapters.solana.retry import Backoff, RetriesExhausted
from engine import events as ev


class Killed(BaseException):
    """The process died here (BaseException: nothing in the projection may swallow it)."""


class CrashingBackend(LiteSvmBackend):
    crash_seq, when, current_seq = -1, "", 0

    async def submit(self, built):
        seq = self.current_seq
        if seq == self.crash_seq and self.when == "before_send":
            self.crash_seq = -1
            raise Killed(f"before sending seq {seq}")
        outcome = await super().submit(built)
        if seq == self.crash_seq and self.when == "after_send":
            self.crash_seq = -1
            raise Killed(f"after sending seq {seq}")
        return outcome


class TrackingProjection(SettlementProjection):
    async def settle(self, event):
        self.backend.current_seq = event.seq
        await super().settle(event)


class CrashingStore(CheckpointStore):
    def __init__(self, path, crash_on_save: int):
        super().__init__(path)
        self.saves, self.crash_on_save = 0, crash_on_save

    def save(self, cp):
        self.saves += 1
        if self.saves == self.crash_on_save:
            raise Killed(f"while writing checkpoint #{self.saves}")
        super().save(cp)


def _settled_seqs(j):
    kinds = (ev.Deposited, ev.Withdrawn, ev.PositionOpened, ev.FundingSettled, ev.PositionClosed,
             ev.PositionLiquidated)
    return [e.seq for e in j.events if isinstance(e, kinds)]


def _party_keys(backend, j) -> list:
    """The accounts of the lifecycle's positions and agents."""
    return [backend.escrow.position_pda(p) for p in range(1, 5)] + [
        backend.escrow.agent_pda(Pubkey.from_string(a)) for a in j.keys]


def _account_data(backend, keys) -> list[bytes]:
    return [bytes(backend.svm.get_account(k).data) for k in keys]


def _run_until_done(backend, store_factory, journal_dir, every):
    crashes = 0
    while True:
        projection = TrackingProjection(backend, store_factory(), on_unmirrorable="halt",
                                        checkpoint_every_events=every)
        try:
            stats = asyncio.run(projection.run(journal_dir))
            return stats, crashes
        except Killed:
            crashes += 1
            assert crashes < 5


@pytest.mark.parametrize("when", ["before_send", "after_send"])
def test_crash_around_every_send(program_path, lifecycle_journal, tmp_path, when):
    journal_dir, j = lifecycle_journal
    seqs = _settled_seqs(j)
    # every settled event of the journal, killed once each, on the same chain
    backend = litesvm_backend(program_path, cls=CrashingBackend)
    backend.when = when
    store_path = tmp_path / "cp.json"
    total_already = 0
    for i, seq in enumerate(seqs):
        backend.crash_seq = seq
        every = 1 if i % 2 else 256  # checkpoint after each event, or lagging far behind
        projection = TrackingProjection(backend, CheckpointStore(store_path), on_unmirrorable="halt",
                                        checkpoint_every_events=every)
        with pytest.raises(Killed):
            asyncio.run(projection.run(journal_dir, until_seq=seq))
        projection = TrackingProjection(backend, CheckpointStore(store_path), on_unmirrorable="halt",
                                        checkpoint_every_events=every)
        stats = asyncio.run(projection.run(journal_dir, until_seq=seq))
        total_already += stats.already_applied
        assert stats.last_seq == seq
    report = reconcile(j.state, backend)
    assert report.ok, "\n".join(map(str, report.differences))
    if when == "after_send":
        assert total_already >= len(seqs)  # each re-run met at least the one it had sent


@pytest.mark.parametrize("crash_on_save", [2, 3, 5])
def test_crash_while_checkpointing(program_path, lifecycle_journal, tmp_path, crash_on_save):
    journal_dir, j = lifecycle_journal
    backend = litesvm_backend(program_path)
    stores = iter([CrashingStore(tmp_path / "cp.json", crash_on_save)] + [CheckpointStore(tmp_path / "cp.json")] * 5)
    stats, crashes = _run_until_done(backend, lambda: next(stores), journal_dir, every=4)
    assert crashes == 1 and stats.last_seq == j.state.last_seq
    report = reconcile(j.state, backend)
    assert report.ok, "\n".join(map(str, report.differences))


def test_rerun_from_zero_changes_nothing(program_path, lifecycle_journal, tmp_path):
    journal_dir, j = lifecycle_journal
    backend = litesvm_backend(program_path)
    asyncio.run(SettlementProjection(backend, CheckpointStore(tmp_path / "a.json"), on_unmirrorable="halt")
                .run(journal_dir))
    keys = [backend.escrow.config, backend.vault] + _party_keys(backend, j)
    before = _account_data(backend, keys)
    # a lost checkpoint: everything from seq 0 again, on the settled chain
    stats = asyncio.run(SettlementProjection(backend, CheckpointStore(tmp_path / "b.json"), on_unmirrorable="halt")
                        .run(journal_dir))
    after = _account_data(backend, keys)
    assert after == before
    assert stats.unmirrored == 0
    assert reconcile(j.state, backend).ok


class FlakyBackend(LiteSvmBackend):
    failures = 0

    async def submit(self, built):
        if self.failures:
            self.failures -= 1
            raise TransientError("connection reset")
        return await super().submit(built)


def test_transient_errors_back_off_then_stop_at_the_checkpoint(program_path, lifecycle_journal, tmp_path):
    journal_dir, j = lifecycle_journal
    backend = litesvm_backend(program_path, cls=FlakyBackend)
    waits: list[float] = []

    async def sleep(s):
        waits.append(s)

    backend.failures = 3
    store = CheckpointStore(tmp_path / "cp.json")
    asyncio.run(SettlementProjection(backend, store, on_unmirrorable="halt", sleep=sleep).run(journal_dir, until_seq=5))
    assert waits == [0.25, 0.5, 1.0]
    backend.failures = 100
    with pytest.raises(RetriesExhausted):
        asyncio.run(SettlementProjection(backend, store, on_unmirrorable="halt", sleep=sleep,
                                         backoff=Backoff(attempts_max=4)).run(journal_dir))
    assert store.load().seq == 5  # nothing beyond what landed
    backend.failures = 0
    asyncio.run(SettlementProjection(backend, store, on_unmirrorable="halt").run(journal_dir))
    assert reconcile(j.state, backend).ok


class RecordingStore(CheckpointStore):
    """Remembers the seq of every checkpoint it saved, in order."""

    def __init__(self, path):
        super().__init__(path)
        self.saved_seqs = []

    def save(self, cp):
        self.saved_seqs.append(cp.seq)
        super().save(cp)




@pytest.mark.parametrize("batch_events, every", [(1, 1), (3, 4), (7, 1), (1_000, 3), (5, 256)])
def test_settling_in_batches_ends_where_settling_event_by_event_ends(program_path, lifecycle_journal, tmp_path,
                                                                    batch_events, every):
    """``settle_all`` (the venue's sink: batches, the events with nothing to mirror passed over
    a stretch at a time) leaves the chain, the counts and the last seq as ``settle`` one event
    at a time does, and saves the checkpoint at least once every ``every`` events read, never
    beyond what it has mirrored."""
    journal_dir, j = lifecycle_journal
    one_by_one = litesvm_backend(program_path)
    expected = asyncio.run(SettlementProjection(one_by_one, CheckpointStore(tmp_path / "a.json"),
                                                on_unmirrorable="halt", checkpoint_every_events=every).run(journal_dir))
    batched = litesvm_backend(program_path)
    store = RecordingStore(tmp_path / "b.json")
    projection = SettlementProjection(batched, store, on_unmirrorable="halt", checkpoint_every_events=every)

    async def settle_in_batches():
        await projection.start()
        for start in range(0, len(j.events), batch_events):
            await projection.settle_all(j.events[start:start + batch_events])
            assert projection.checkpoint.seq == j.events[min(start + batch_events, len(j.events)) - 1].seq

    asyncio.run(settle_in_batches())
    stats = projection.stats
    assert (stats.events_read, stats.events_settled, stats.last_seq, stats.unmirrored) == (
        expected.events_read, expected.events_settled, expected.last_seq, 0)
    # The positions' and agents' accounts (the config and the vault hold each chain's own keys).
    assert _account_data(batched, _party_keys(batched, j)) == _account_data(one_by_one, _party_keys(one_by_one, j))
    assert reconcile(j.state, batched).ok
    assert len(store.saved_seqs) >= stats.events_read // every and store.saved_seqs == sorted(store.saved_seqs)
    assert store.saved_seqs[-1] <= stats.last_seq
