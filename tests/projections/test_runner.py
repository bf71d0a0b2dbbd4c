"""The runner: a failing sink is retried at the same seq with growing, jittered waits and
never skipped; the live runner follows the hub's durable notifications (no polling); a
coalescing sink gets whole batches, and a part one after its coalescing time."""

from __future__ import annotations

import asyncio
import random
import threading
import types

import pytest

from engine import commands as cmd
from adapters.gateway.hub import Hub
from ledger.projections.runner import HubTail, MovingTail, RetryPolicy, Runner
from tests.projections.support import E6, T0_NS, JournalWriter
from venue.config import SQL_COALESCE_MS_MAX, ProjectionsSection


class FlakySink:
    """Keeps every seq it applied (durably, as far as the test goes); fails while told to."""

    def __init__(self, name: str = "flaky", fail_at_seq: int = 0, failures: int = 0):
        self.name = name
        self.fail_at_seq = fail_at_seq
        self.failures_left = failures
        self.applied: list[int] = []
        self.recovered = 0

    def load_checkpoint(self) -> int:
        return self.applied[-1] if self.applied else 0

    def recover(self) -> None:
        self.recovered += 1

    def apply(self, records, after_seq: int) -> int:
        seqs = [e.seq for r in records for e in r.events if e.seq > after_seq]
        if self.failures_left and self.fail_at_seq in seqs:
            self.failures_left -= 1
            raise ConnectionError(f"sink down at seq {self.fail_at_seq}")
        self.applied.extend(seqs)
        return seqs[-1]


def _deposits(data_dir, count: int) -> JournalWriter:
    writer = JournalWriter(data_dir)
    for i in range(count):
        writer(T0_NS + i, cmd.Deposit(f"agent{i % 7}", (i + 1) * E6, f"ref{i}"))
    return writer


def test_retry_policy_grows_to_its_cap_with_bounded_jitter():
    policy = RetryPolicy(backoff_s_min=0.1, backoff_s_max=2.0, factor=2.0, jitter_fraction=0.25)
    rng = random.Random(1)
    for attempt, base in [(1, 0.1), (2, 0.2), (3, 0.4), (5, 1.6), (6, 2.0), (50, 2.0)]:
        for _ in range(20):
            assert base * 0.75 <= policy.delay_s(attempt, rng) <= base * 1.25


def test_a_failing_sink_is_retried_at_the_same_seq_and_never_skips(tmp_path):
    writer = _deposits(tmp_path, 40)
    writer.close()
    sink = FlakySink(fail_at_seq=17, failures=3)
    runner = Runner(tmp_path / "journal", [sink], batch_events=5,
                    retry=RetryPolicy(backoff_s_min=0.0, backoff_s_max=0.0))
    assert runner.catch_up() == {"flaky": 40}
    assert sink.applied == list(range(1, 41))  # every seq once, in order: nothing skipped, nothing twice
    status = runner.status["flaky"]
    assert (status.failures, status.retry_attempt, status.failing_seq, sink.recovered) == (3, 0, None, 3)


async def test_live_runner_reports_the_failure_then_catches_up_on_the_hubs_notification(tmp_path):
    writer = _deposits(tmp_path, 10)
    hub = Hub(tmp_path / "journal", writer.state.last_seq)
    waits: list[float] = []
    released = asyncio.Event()
    waiting = asyncio.Event()

    async def sleep(delay_s: float) -> None:  # the backoff, observed and released by the test
        waits.append(delay_s)
        waiting.set()
        await released.wait()
        released.clear()

    sink = FlakySink(fail_at_seq=12, failures=2)
    runner = Runner(tmp_path / "journal", [sink], tail=HubTail(hub), batch_events=4, seed=3,
                    retry=RetryPolicy(backoff_s_min=1.0, backoff_s_max=8.0), sleep=sleep)
    await runner.start()
    try:
        await runner.until(lambda: sink.applied == list(range(1, 11)) and runner.status["flaky"].state == "live")
        assert runner.lag("flaky") == (0, 0.0)

        for i in range(10, 15):  # five more durable commands; the hub tells the runner
            outcome = writer(T0_NS + 10**9 + i, cmd.Deposit(f"agent{i}", E6, f"ref{i}"))
            hub.publish([(None, types.SimpleNamespace(events=outcome))])
        await waiting.wait()
        waiting.clear()
        status = runner.status["flaky"]
        assert (status.state, status.failing_seq, status.retry_attempt) == ("retrying", 11, 1)
        assert "sink down at seq 12" in status.last_error
        assert runner.lag("flaky") == (5, pytest.approx(1.0, abs=1e-6))  # 1 s of journal time behind
        assert 0.75 <= waits[0] <= 1.25
        released.set()
        await waiting.wait()
        assert 1.5 <= waits[1] <= 2.5  # the backoff grew
        released.set()
        await runner.wait_for_seq("flaky", 15)
        assert sink.applied == list(range(1, 16))
        assert runner.status["flaky"].retry_attempt == 0 and runner.lag("flaky") == (0, 0.0)
        assert runner.summary()[0]["failures"] == 2
    finally:
        await runner.stop()
        writer.close()


async def test_a_checkpoint_beyond_the_journal_stops_the_projection_and_says_so(tmp_path):
    writer = _deposits(tmp_path, 5)
    hub = Hub(tmp_path / "journal", writer.state.last_seq)
    sink = FlakySink()
    sink.applied = list(range(1, 9))  # its output came from a longer journal (a data dir reset)
    runner = Runner(tmp_path / "journal", [sink], tail=HubTail(hub))
    await runner.start()
    try:
        await runner.until(lambda: runner.status["flaky"].state == "ahead_of_journal")
        assert "beyond the journal's last seq 5" in runner.summary()[0]["last_error"]
        assert sink.applied == list(range(1, 9))  # nothing applied, nothing skipped silently
    finally:
        await runner.stop()
        writer.close()


class GatedSink(FlakySink):
    """Records each batch's seqs; its first ``apply`` waits until the test opens the gate."""

    def __init__(self, coalesce_s: float):
        super().__init__("gated")
        self.coalesce_s = coalesce_s
        self.batches: list[list[int]] = []
        self.entered = threading.Event()
        self.gate = threading.Event()

    def apply(self, records, after_seq: int) -> int:
        self.entered.set()
        self.gate.wait()
        last = super().apply(records, after_seq)
        self.batches.append([e.seq for r in records for e in r.events if e.seq > after_seq])
        return last


async def _runner_over(tmp_path, sink: GatedSink, events: int):
    writer = _deposits(tmp_path, events)
    tail = MovingTail(0)
    runner = Runner(tmp_path / "journal", [sink], tail=tail, batch_events=3)
    await runner.start()
    return writer, tail, runner


async def test_a_coalescing_projection_waits_for_a_whole_batch_after_a_part_one_arrives(tmp_path):
    sink = GatedSink(coalesce_s=3600.0)  # longer than any test: only a whole batch can end the wait
    writer, tail, runner = await _runner_over(tmp_path, sink, 6)
    try:
        tail.move(3, T0_NS)  # a whole batch: applied at once
        await asyncio.to_thread(sink.entered.wait)
        tail.move(5, T0_NS)  # while it is applied, 2 more: a part batch, which waits ...
        sink.gate.set()
        await runner.wait_for_seq("gated", 3)
        tail.move(6, T0_NS)  # ... until the third makes it whole
        await runner.wait_for_seq("gated", 6)
        assert sink.batches == [[1, 2, 3], [4, 5, 6]]
    finally:
        await runner.stop()
        writer.close()


async def test_a_part_batch_waits_at_most_the_coalescing_time(tmp_path):
    sink = GatedSink(coalesce_s=0.01)
    sink.gate.set()
    writer, tail, runner = await _runner_over(tmp_path, sink, 2)
    try:
        tail.move(1, T0_NS)  # one event, no more coming: applied once the wait runs out
        await runner.wait_for_seq("gated", 1)
        tail.move(2, T0_NS)
        await runner.wait_for_seq("gated", 2)
        assert sink.batches == [[1], [2]]
    finally:
        await runner.stop()
        writer.close()


@pytest.mark.parametrize("coalesce_ms", [-1, SQL_COALESCE_MS_MAX + 1])
def test_the_sql_coalescing_time_is_bounded(coalesce_ms):
    with pytest.raises(ValueError, match="sql_coalesce_ms"):
        ProjectionsSection(sql_coalesce_ms=coalesce_ms)
    assert ProjectionsSection(sql_coalesce_ms=SQL_COALESCE_MS_MAX).sql_coalesce_ms == SQL_COALESCE_MS_MAX
