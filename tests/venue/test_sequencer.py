"""The sequencer on a real journal: order, group commit, acks only once durable, Tick
injection, back-pressure, fail-stop; and the venue's restart from its journal."""

from __future__ import annotations

import asyncio
import errno
import threading

import pytest

from engine import commands as c
from engine import views
from engine.markets import default_config
from engine.state import State, state_hash
from ledger.genesis import ConfigChanged
from ledger.journal import FileOps, Journal, JournalReader
from ledger.records import decode_record
from ledger.recovery import replay_into
from tests.support import FakeClock
from venue.app import Venue
from venue.config import TICK_EVENTS_MAX_NEW_JOURNAL, load
from protocol.codes import OVERLOADED, STOPPED
from venue.sequencer import WRITES_QUEUED_MAX, Sequencer

USDC = 1_000_000


def records(journal_dir):
    return [decode_record(payload) for _, payload in JournalReader(journal_dir).read(from_seq=1)]


def sequencer(tmp_path, *, ops=None, clock=None, **limits) -> Sequencer:
    journal = Journal.open(tmp_path / "journal", ops=ops)
    settings = {"queue_max": 1_000, "batch_max": 64, "tick_interval_ms": 100, **limits}
    return Sequencer(State(default_config()), journal, clock=clock or FakeClock(), **settings)


async def test_batch_in_order_and_durable_before_ack(tmp_path):
    seq = sequencer(tmp_path, batch_max=16)
    task = asyncio.create_task(seq.run())
    futures = [seq.submit(c.Deposit("alice", (i + 1) * USDC, f"ref{i}")) for i in range(50)]
    futures.append(seq.submit(c.Deposit("alice", USDC, "ref0")))  # repeated ref: DUPLICATE
    outcomes = await asyncio.gather(*futures)
    # Each outcome is in the journal by the time it resolves.
    on_disk = {r.cmd_id: r for r in records(tmp_path / "journal")}
    for i, outcome in enumerate(outcomes[:50]):
        assert outcome.rejection is None and outcome.events[0].amount_e6 == (i + 1) * USDC
        assert on_disk[outcome.cmd_id].events == outcome.events
    assert [o.cmd_id for o in outcomes] == sorted(o.cmd_id for o in outcomes)
    assert outcomes[-1].rejection.code == "DUPLICATE"
    assert seq.batches_total >= 4  # batch_max 16 split the 51 commands
    seq.stop()
    await task
    seq.journal.close()
    replayed = State(default_config())
    replay_into(replayed, tmp_path / "journal")
    assert state_hash(replayed) == state_hash(seq.state)
    assert views.account(replayed, "alice").free_e6 == sum(range(1, 51)) * USDC


class StallingOps(FileOps):
    """fsync announces itself, then waits for the gate; counts the syncs; may fail."""

    def __init__(self):
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.fsyncs = 0
        self.fail = False

    def fsync(self, fd):
        self.entered.set()
        self.gate.wait(10)
        if self.fail:
            raise OSError(errno.EIO, "injected")
        super().fsync(fd)
        self.fsyncs += 1


async def test_no_ack_before_the_batch_is_durable(tmp_path):
    ops = StallingOps()
    seq = sequencer(tmp_path, ops=ops)
    task = asyncio.create_task(seq.run())
    await seq.submit(c.Deposit("alice", USDC, "warm"))
    ops.gate.clear()
    ops.entered.clear()
    pending = seq.submit(c.Deposit("alice", USDC, "slow"))
    await asyncio.to_thread(ops.entered.wait, 10)  # its batch is written and inside the fsync
    assert not pending.done()  # decided and written, not yet fsynced: not acknowledged
    ops.gate.set()
    outcome = await pending
    assert outcome.rejection is None
    seq.stop()
    await task
    seq.journal.close()


async def test_full_queue_rejects_with_overloaded_and_journals_nothing_of_it(tmp_path):
    seq = sequencer(tmp_path, queue_max=10)
    futures = [seq.submit(c.Deposit("bob", USDC, f"r{i}")) for i in range(25)]  # before the loop runs
    refused = [f.result() for f in futures[10:]]
    assert all(o.rejection.code == OVERLOADED and o.rejection.detail["queue_max"] == 10 for o in refused)
    task = asyncio.create_task(seq.run())
    accepted = await asyncio.gather(*futures[:10])
    assert all(o.rejection is None for o in accepted)
    seq.stop()
    await task
    seq.journal.close()
    deposits = [r for r in records(tmp_path / "journal") if type(r.command) is c.Deposit]
    assert [r.command.ref for r in deposits] == [f"r{i}" for i in range(10)]


async def test_ticks_are_injected_and_expire_what_is_due(tmp_path):
    clock = FakeClock()
    seq = sequencer(tmp_path, clock=clock, tick_interval_ms=100)
    watched = Watched(seq)
    task = asyncio.create_task(seq.run())
    await seq.submit(c.Deposit("trader", 1_000 * USDC, "t"))
    await seq.submit(c.OracleUpdate(0, 65_000 * 10**8, 10**8, clock.now_ns, "test"))
    opened = await seq.submit(c.RequestQuote("trader", 0, "long", 100 * USDC, 10, 10_000_000, expires_in_ms=1_000))
    assert opened.rejection is None
    clock.now_ns += 2 * 10**9  # past the RFQ's expiry and many tick intervals
    async with asyncio.timeout(10):
        while views.rfqs(seq.state):  # each decided batch (the injected Ticks among them)
            await watched.decided_seq.get()
    seq.stop()
    await task
    seq.journal.close()
    journaled = records(tmp_path / "journal")
    ticks = [r for r in journaled if type(r.command) is c.Tick]
    assert ticks and any(type(e).__name__ == "RfqClosed" for r in ticks for e in r.events)
    stamps = [r.ts_ns for r in journaled]
    assert stamps == sorted(set(stamps))  # strictly increasing, even under a frozen clock


async def test_a_tick_at_its_bound_is_followed_by_another_at_once(tmp_path):
    """tick_events_max 4: ten RFQs due at once close over several Ticks, each bounded, one
    round after the other — the clock is frozen after one tick interval, so without the
    sequencer's immediate re-tick only the first Tick would ever run."""
    clock = FakeClock()
    journal = Journal.open(tmp_path / "journal")
    seq = Sequencer(State(default_config(tick_events_max=4)), journal, clock=clock, queue_max=1_000, batch_max=64,
                    tick_interval_ms=100)
    watched = Watched(seq)
    task = asyncio.create_task(seq.run())
    await seq.submit(c.Deposit("trader", 10_000 * USDC, "t"))
    await seq.submit(c.OracleUpdate(0, 65_000 * 10**8, 10**8, clock.now_ns, "test"))
    for _ in range(10):
        opened = await seq.submit(c.RequestQuote("trader", 0, "long", 100 * USDC, 10, 10_000_000,
                                                 expires_in_ms=1_000))
        assert opened.rejection is None
    clock.now_ns += 2 * 10**9  # past every RFQ's expiry; then frozen
    async with asyncio.timeout(10):
        while views.rfqs(seq.state):
            await watched.decided_seq.get()
    seq.stop()
    await task
    seq.journal.close()
    journaled = records(tmp_path / "journal")
    closing = [r for r in journaled if type(r.command) is c.Tick and r.events]
    assert [len(r.events) for r in closing] == [4, 4, 2]  # one RfqClosed per RFQ, four a Tick
    assert all(type(e).__name__ == "RfqClosed" for r in closing for e in r.events)
    replayed = State(default_config(tick_events_max=4))
    replay_into(replayed, tmp_path / "journal")
    assert state_hash(replayed) == state_hash(seq.state)
    assert views.account(replayed, "trader").held_e6 == 0


class FailingOps(FileOps):
    def __init__(self):
        self.fail = False

    def fsync(self, fd):
        if self.fail:
            raise OSError(errno.EIO, "injected")
        super().fsync(fd)


async def test_write_failure_stops_the_sequencer_and_acks_nothing_more(tmp_path):
    ops = FailingOps()
    seq = sequencer(tmp_path, ops=ops)
    task = asyncio.create_task(seq.run())
    acked = await seq.submit(c.Deposit("alice", USDC, "ok"))
    ops.fail = True
    lost = [seq.submit(c.Deposit("alice", USDC, f"lost{i}")) for i in range(5)]
    with pytest.raises(Exception):
        await task
    assert seq.failed is not None
    for future in lost:
        # Either refused outright or left unresolved; never acknowledged as executed.
        assert not future.done() or future.result().rejection.code == STOPPED
    after = await seq.submit(c.Deposit("alice", USDC, "after"))
    assert after.rejection.code == STOPPED
    seq.journal.close()
    on_disk = [r.command.ref for r in records(tmp_path / "journal") if type(r.command) is c.Deposit]
    assert on_disk[0] == acked.events[0].ref


class Watched:
    """The sequencer's decisions and its pauses for the journal, observed as they happen (its
    own methods wrapped on the instance, their behaviour untouched): what the tests wait on."""

    def __init__(self, seq: Sequencer):
        self.decided_seq = asyncio.Queue()  # the state's last seq after each decided batch
        self.paused = asyncio.Event()  # deciding waits for the journal (WRITES_QUEUED_MAX)
        decide, wait_drained = seq._decide, seq._wait_drained

        def decided(batch):
            out = decide(batch)
            self.decided_seq.put_nowait(seq.state.last_seq)
            return out

        async def paused():
            self.paused.set()
            await wait_drained()

        seq._decide, seq._wait_drained = decided, paused

    async def decided(self, last_seq: int) -> None:
        """Return once a batch decided up to event ``last_seq``."""
        while await self.decided_seq.get() < last_seq:
            pass


async def stalled_with_batches_queued(seq: Sequencer, ops: StallingOps, watched: Watched) -> list[asyncio.Future]:
    """Block the journal thread in the fsync of one batch, then queue three more batches
    behind it, each decided on its own: the four futures, none resolved."""
    await seq.submit(c.Deposit("alice", USDC, "warm"))
    ops.gate.clear()
    ops.entered.clear()
    futures = [seq.submit(c.Deposit("alice", USDC, "first"))]
    await asyncio.to_thread(ops.entered.wait, 10)  # the journal thread is inside the fsync
    for ref in ("b", "c", "d"):
        futures.append(seq.submit(c.Deposit("alice", USDC, ref)))
        await watched.decided(seq.state.last_seq + 1)
    assert not any(f.done() for f in futures)  # decided, not durable: not acknowledged
    return futures


async def test_batches_decided_during_an_fsync_share_the_next_group_commit(tmp_path):
    ops = StallingOps()
    seq = sequencer(tmp_path, ops=ops, batch_max=8)
    watched = Watched(seq)
    task = asyncio.create_task(seq.run())
    futures = await stalled_with_batches_queued(seq, ops, watched)
    fsyncs_before = ops.fsyncs
    ops.gate.set()
    outcomes = await asyncio.gather(*futures)
    assert all(o.rejection is None for o in outcomes)
    assert [o.cmd_id for o in outcomes] == sorted(o.cmd_id for o in outcomes)
    assert ops.fsyncs - fsyncs_before == 2  # the stalled batch, then the three queued ones together
    assert seq.batches_total == 5  # warm, first, b, c, d: acknowledged batch by batch
    seq.stop()
    await task
    seq.journal.close()
    on_disk = [r.command.ref for r in records(tmp_path / "journal") if type(r.command) is c.Deposit]
    assert on_disk == ["warm", "first", "b", "c", "d"]


async def test_deciding_pauses_at_writes_queued_max_until_the_journal_catches_up(tmp_path):
    ops = StallingOps()
    seq = sequencer(tmp_path, ops=ops, batch_max=8)
    watched = Watched(seq)
    task = asyncio.create_task(seq.run())
    futures = await stalled_with_batches_queued(seq, ops, watched)  # 4 batches not durable
    for i in range(WRITES_QUEUED_MAX - len(futures)):
        futures.append(seq.submit(c.Deposit("alice", USDC, f"q{i}")))
        await watched.decided(seq.state.last_seq + 1)
    decided_seq = seq.state.last_seq
    beyond = seq.submit(c.Deposit("alice", USDC, "beyond"))
    await watched.paused.wait()  # the sequencer saw it waiting, and waits for the journal instead
    assert watched.decided_seq.empty()
    assert seq.state.last_seq == decided_seq and seq.queue_depth == 1 and not beyond.done()
    ops.gate.set()
    outcomes = await asyncio.gather(*futures, beyond)
    assert all(o.rejection is None for o in outcomes)
    assert [o.cmd_id for o in outcomes] == sorted(o.cmd_id for o in outcomes)
    seq.stop()
    await task
    seq.journal.close()


async def test_a_failed_fsync_refuses_every_batch_queued_behind_it(tmp_path):
    ops = StallingOps()
    seq = sequencer(tmp_path, ops=ops, batch_max=8)
    watched = Watched(seq)
    task = asyncio.create_task(seq.run())
    futures = await stalled_with_batches_queued(seq, ops, watched)
    ops.fail = True
    ops.gate.set()
    outcomes = await asyncio.gather(*futures)
    assert [o.rejection.code for o in outcomes] == [STOPPED] * 4  # none acknowledged
    with pytest.raises(Exception):
        await task
    seq.journal.close()
    on_disk = [r.command.ref for r in records(tmp_path / "journal") if type(r.command) is c.Deposit]
    assert on_disk == ["warm"]  # the rollback cut the failed write


def venue_config(tmp_path, **venue):
    return load(env={}, overrides={"venue": {"data_dir": str(tmp_path / "data"), "demo": False, **venue},
                                   "oracle": {"source": "none"}})


async def test_restart_resumes_from_the_journal_with_time_never_going_back(tmp_path):
    clock = FakeClock()
    venue = Venue(venue_config(tmp_path), clock=clock)
    await venue.start(serve=False)
    acked = [await venue.execute(c.Deposit("alice", USDC, f"r{i}")) for i in range(20)]
    hash_before = state_hash(venue.state)
    last_ts = venue.sequencer.last_ts_ns
    await venue.stop()

    clock.now_ns -= 3_600 * 10**9  # the machine's clock went back an hour
    again = Venue(venue_config(tmp_path), clock=clock)
    await again.start(serve=False)
    assert state_hash(again.state) == hash_before
    assert views.account(again.state, "alice").free_e6 == 20 * USDC
    later = await again.execute(c.Deposit("alice", USDC, "r-after"))
    assert later.ts_ns > last_ts
    assert all(o.rejection is None for o in acked)
    await again.stop()


async def test_an_unset_tick_bound_follows_the_journal_and_a_set_one_must_equal_it(tmp_path):
    """A journal written with tick_events_max 0 (as every one before the field): a venue that
    leaves the setting unset restarts on it with 0; one that sets 256 is refused; a new data
    directory gets 256."""
    def config(**engine):
        return load(env={}, overrides={"venue": {"data_dir": str(tmp_path / "data"), "demo": False},
                                       "oracle": {"source": "none"}, "engine": engine})

    old = Venue(config(tick_events_max=0), clock=FakeClock())
    await old.start(serve=False)
    await old.execute(c.Deposit("alice", USDC, "r"))
    await old.stop()
    upgraded = Venue(config(), clock=FakeClock())
    await upgraded.start(serve=False)
    assert upgraded.state.config.tick_events_max == 0
    assert views.account(upgraded.state, "alice").free_e6 == USDC
    await upgraded.stop()
    with pytest.raises(ConfigChanged, match="tick_events_max"):
        await Venue(config(tick_events_max=256), clock=FakeClock()).start(serve=False)
    fresh = Venue(load(env={}, overrides={"venue": {"data_dir": str(tmp_path / "new"), "demo": False},
                                          "oracle": {"source": "none"}}), clock=FakeClock())
    await fresh.start(serve=False)
    assert fresh.state.config.tick_events_max == TICK_EVENTS_MAX_NEW_JOURNAL == 256
    await fresh.stop()


async def test_replies_once_durable_streams_first_and_one_failing_reply_stops_no_other(tmp_path):
    order: list[str] = []
    seq = sequencer(tmp_path, batch_max=64)
    seq.on_durable = lambda batch: order.append(f"streams:{len(batch)}")

    def failing_reply(outcome):
        order.append("failing")
        raise RuntimeError("a gateway bug")

    got: list = []
    seq.submit_with(c.Deposit("alice", USDC, "a"), failing_reply)
    bob_answered = asyncio.Event()
    seq.submit_with(c.Deposit("bob", USDC, "b"),
                    lambda outcome: (order.append("bob"), got.append(outcome), bob_answered.set()))
    seq.submit_with(c.Deposit("carol", USDC, "c"), None)  # nobody waits: still executed
    task = asyncio.create_task(seq.run())
    await asyncio.wait_for(bob_answered.wait(), 10)
    assert order == ["streams:3", "failing", "bob"]  # streams before acks, in submission order
    assert got[0].rejection is None and got[0].events[0].agent == "bob"
    assert [r.command.agent for r in records(tmp_path / "journal")] == ["alice", "bob", "carol"]
    seq.stop()
    await task
    seq.journal.close()


async def test_submit_with_answers_a_full_queue_at_once(tmp_path):
    seq = sequencer(tmp_path, queue_max=1)
    answers: list = []
    both = asyncio.Event()

    def answer(outcome):
        answers.append(outcome)
        if len(answers) == 2:
            both.set()

    seq.submit_with(c.Deposit("alice", USDC, "a"), answer)
    seq.submit_with(c.Deposit("bob", USDC, "b"), answer)  # the queue is full
    assert [a.rejection.code for a in answers] == [OVERLOADED]  # synchronously, never journaled
    task = asyncio.create_task(seq.run())
    await asyncio.wait_for(both.wait(), 10)
    assert answers[1].rejection is None
    seq.stop()
    await task
    seq.journal.close()
    assert [r.command.agent for r in records(tmp_path / "journal")] == ["alice"]
