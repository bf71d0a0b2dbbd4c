"""The Solana settlement projection on the projection runner: the chain ends where the
engine does (reconcile), in small batches; a backend failing mid-batch is retried by the
runner at the same seq, and the escrow's seq guard makes the repeat harmless."""

from __future__ import annotations

from adapters.solana.backend_litesvm import LiteSvmBackend
from adapters.solana.checkpoint import CheckpointStore
from adapters.solana.projection import SettlementProjection
from adapters.solana.reconcile import reconcile
from adapters.solana.runner_sink import SettlementSink
from ledger.projections.runner import RetryPolicy, Runner
from tests.settlement.conftest import lifecycle_journal, program_path  # noqa: F401  (fixtures)
from venue.settlement import litesvm_backend

NO_WAIT = RetryPolicy(backoff_s_min=0.0, backoff_s_max=0.0)


class FailingOnce(LiteSvmBackend):
    """Fails the ``fail_at``-th submit once, after it landed (as a lost reply would)."""

    fail_at, submits = 0, 0

    async def submit(self, built):
        outcome = await super().submit(built)
        self.submits += 1
        if self.submits == self.fail_at:
            raise ConnectionError("the reply was lost")
        return outcome


def test_settlement_on_the_runner_reconciles(program_path, lifecycle_journal, tmp_path):  # noqa: F811
    journal_dir, j = lifecycle_journal
    backend = litesvm_backend(program_path)
    sink = SettlementSink(SettlementProjection(backend, CheckpointStore(tmp_path / "cp.json"), on_unmirrorable="halt"))
    try:
        assert Runner(journal_dir, [sink], batch_events=3).catch_up() == {"settlement": j.state.last_seq}
    finally:
        sink.close()
    report = reconcile(j.state, backend)
    assert report.ok, "\n".join(map(str, report.differences))
    assert CheckpointStore(tmp_path / "cp.json").load().seq == j.state.last_seq


def test_a_failed_batch_is_retried_at_its_seq_and_settles_once(program_path, lifecycle_journal, tmp_path):  # noqa: F811
    journal_dir, j = lifecycle_journal
    backend = litesvm_backend(program_path, cls=FailingOnce)
    backend.fail_at = 5
    sink = SettlementSink(SettlementProjection(backend, CheckpointStore(tmp_path / "cp.json"), on_unmirrorable="halt"))
    runner = Runner(journal_dir, [sink], batch_events=4, retry=NO_WAIT)
    try:
        assert runner.catch_up() == {"settlement": j.state.last_seq}
    finally:
        sink.close()
    assert runner.status["settlement"].failures == 1
    assert sink.projection.stats.already_applied >= 1  # the landed instruction, met again on chain
    report = reconcile(j.state, backend)
    assert report.ok, "\n".join(map(str, report.differences))
