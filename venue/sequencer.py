"""The sequencer: the venue's one writer (DESIGN §1, §7).

It runs on the asyncio loop. Each round it drains every waiting command (at most
``batch_max``), adds a ``Tick`` when one is due (at once again after a Tick that stopped at
the engine's ``tick_events_max``, so expiries in bulk go a bounded slice a round between
the commands), stamps each with a strictly increasing
``ts_ns`` and a gap-free ``cmd_id``, executes it against the state left by the one before
(``engine.core.execute``: decide, then apply), journals the whole batch with one group
commit on the journal's own thread, and only then acknowledges the batch and hands its
events to the hub for fan-out.

The journal thread is a pipeline, not a round trip: decided batches wait in its queue
(at most ``WRITES_QUEUED_MAX``), and as soon as one group commit returns it writes every
batch that waits (up to ``batch_max`` commands) with the next — the fsync never waits for
the loop to deliver the previous acks, and a slow disk merges batches instead of queueing
them. Batches are written and acknowledged in order, each ack only after its batch's fsync.
If a write fails the journal fails stop and so does the sequencer: every decided batch not
yet durable is answered ``STOPPED``; nothing beyond what is on disk was ever acknowledged.

The waiting queue is bounded: a command offered to a full queue is answered at once with
``OVERLOADED`` and never enters the journal.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from protocol.codes import OVERLOADED, STOPPED
from engine import commands as cmd
from engine.core import execute, tick_stopped_at_bound
from engine.rejections import Rejected
from engine.state import State
from ledger.journal import Journal, JournalFailed
from ledger.records import JournalRecord, encode, make_record
from ledger.snapshots import SnapshotCopy, SnapshotWriter

log = logging.getLogger("agentperp.sequencer")

# Decided batches not yet durable, at most: beyond it the sequencer stops deciding until the
# journal catches up (the waiting queue, bounded by queue_max, then absorbs the load).
WRITES_QUEUED_MAX = 8


class Outcome:
    """What one command did: its cmd_id and ts_ns, and its events or its rejection; and its
    journal record (None for a command refused before the engine)."""

    __slots__ = ("cmd_id", "ts_ns", "events", "rejection", "seq", "record")

    def __init__(self, cmd_id: int, ts_ns: int, events: list, rejection: Rejected | None, seq: int,
                 record: JournalRecord | None = None):
        self.cmd_id = cmd_id
        self.ts_ns = ts_ns
        self.events = events
        self.rejection = rejection
        self.seq = seq  # the last seq of its events, or the venue's last seq when it caused none
        self.record = record


Reply = Callable[[Outcome], None]


def _deliver(reply: Reply | None, outcome: Outcome) -> None:
    """Hand ``outcome`` to its submitter; one submitter's failure never stops the others."""
    if reply is None:
        return
    try:
        reply(outcome)
    except Exception:
        log.exception("a reply to a command failed")


def _resolve(future: asyncio.Future, outcome: Outcome) -> None:
    if not future.done():  # a caller may have cancelled it
        future.set_result(outcome)


def refused(code: str, message: str, **detail) -> Outcome:
    """An outcome for a command that never reached the engine (not journaled)."""
    return Outcome(0, 0, [], Rejected(code, message, detail), 0)


class Sequencer:
    def __init__(self, state: State, journal: Journal, *, queue_max: int, batch_max: int,
                 tick_interval_ms: int, snapshots: SnapshotWriter | None = None, snapshot_every_commands: int = 0,
                 clock: Callable[[], int] = time.time_ns, last_ts_ns: int = 0,
                 on_durable: Callable[[list[tuple[object, Outcome]]], None] | None = None):
        self.state = state
        self.journal = journal
        self.queue_max = queue_max
        self.batch_max = batch_max
        self.tick_interval_ns = tick_interval_ms * 1_000_000
        self.snapshots = snapshots
        self.snapshot_every_commands = snapshot_every_commands
        self.clock = clock
        self.last_ts_ns = last_ts_ns
        self.on_durable = on_durable
        self._waiting: deque[tuple[object, Reply | None]] = deque()
        self._wake = asyncio.Event()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal")
        # Decided batches for the journal thread, (payloads, batch, snapshot) each, in order.
        self._decided: deque[tuple[list[bytes], list, SnapshotCopy | None]] = deque()
        self._decided_lock = threading.Lock()  # guards _decided and _writing (loop and journal thread)
        self._writing = False  # a _write_queued job runs on the journal thread
        self._undurable = 0  # batches decided and not yet acknowledged (<= WRITES_QUEUED_MAX)
        self._drained = asyncio.Event()  # a durable batch was acknowledged, or the journal failed
        self._next_tick_ns = 0
        self._last_cmd_id = journal.last_cmd_id  # decided ahead of the journal by WRITES_QUEUED_MAX batches at most
        self._stopping = False
        self.failed: BaseException | None = None
        # Figures for /metrics and the status line.
        self.commands_total = 0
        self.batches_total = 0
        self.last_batch_size = 0
        self.last_write_s = 0.0

    # -- the producers' side ----------------------------------------------------------------

    @property
    def queue_depth(self) -> int:
        return len(self._waiting)

    def submit(self, command) -> asyncio.Future:
        """Queue ``command``; the future resolves to its ``Outcome`` once it is durable (or
        at once with an ``OVERLOADED``/``STOPPED`` rejection that was never journaled)."""
        future = asyncio.get_running_loop().create_future()
        self.submit_with(command, partial(_resolve, future))
        return future

    def submit_with(self, command, reply: Reply | None) -> None:
        """Queue ``command``; ``reply(outcome)`` is called once, on the loop, when it is
        durable (or at once with an ``OVERLOADED``/``STOPPED`` rejection that was never
        journaled). The gateways' hot path: no future, no loop callback per command."""
        if self._stopping or self.failed is not None:
            _deliver(reply, refused(STOPPED, "the venue is stopping; nothing was executed"))
        elif len(self._waiting) >= self.queue_max:
            _deliver(reply, refused(OVERLOADED, "the venue's command queue is full; retry shortly",
                                    queue_max=self.queue_max))
        else:
            self._waiting.append((command, reply))
            self._wake.set()

    # -- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Sequence until ``stop()``; then drain what is waiting and return. Raises the
        journal's error if a write failed (fail stop)."""
        loop = asyncio.get_running_loop()
        batch: list = []
        self._next_tick_ns = self.clock() + self.tick_interval_ns
        try:
            while True:
                await self._wait_for_work()
                self._raise_if_failed()
                if self._undurable >= WRITES_QUEUED_MAX:
                    await self._wait_drained()
                    continue
                batch = self._take_batch()
                if not batch:
                    if self._stopping:
                        break
                    continue
                payloads, snapshot = self._decide(batch)
                self._queue_write(loop, payloads, batch, snapshot)
                batch = []
            while self._undurable:
                await self._wait_drained()
        except BaseException as error:
            self._fail(error)
            for _, reply, _ in batch:  # decided but never written: never acknowledged
                _deliver(reply, refused(STOPPED, "the venue stopped before this command was durable"))
            raise
        finally:
            self._writer.shutdown(wait=True)

    def _raise_if_failed(self) -> None:
        if self.failed is not None:
            raise self.failed

    async def _wait_drained(self) -> None:
        self._drained.clear()
        await self._drained.wait()
        self._raise_if_failed()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def _wait_for_work(self) -> None:
        if self._waiting or self._stopping:
            return
        timeout_s = max(0.0, (self._next_tick_ns - self.clock()) / 1e9)
        # A timer that sets the event, not wait_for: no task and no cancellation per round.
        timer = asyncio.get_running_loop().call_later(timeout_s, self._wake.set)
        try:
            await self._wake.wait()
        finally:
            timer.cancel()
        self._wake.clear()

    def _take_batch(self) -> list[list]:
        """The waiting commands (at most batch_max) and a Tick if one is due."""
        batch = []
        waiting = self._waiting
        while waiting and len(batch) < self.batch_max:
            command, reply = waiting.popleft()
            batch.append([command, reply, None])
        now_ns = self.clock()
        if now_ns >= self._next_tick_ns and not self._stopping:
            batch.append([cmd.Tick(), None, None])
            self._next_tick_ns = now_ns + self.tick_interval_ns
        if waiting:
            self._wake.set()
        return batch

    def _decide(self, batch: list) -> tuple[list[bytes], SnapshotCopy | None]:
        """Stamp and execute each command in order; the journal payloads of the batch, and
        the copy of the state for a snapshot when one fell due in it (written only once the
        batch is durable: see ``_write``)."""
        state = self.state
        payloads = []
        snapshot = None
        ts_ns = max(self.clock(), self.last_ts_ns + 1)
        for item in batch:
            command = item[0]
            cmd_id = self._last_cmd_id + 1
            seq_before = state.last_seq
            result = execute(state, command, ts_ns, cmd_id)
            record = make_record(cmd_id, ts_ns, command, result, seq_before)
            payloads.append(encode(record))
            if isinstance(result, Rejected):
                item[2] = Outcome(cmd_id, ts_ns, [], result, state.last_seq, record)
            else:
                item[2] = Outcome(cmd_id, ts_ns, result, None, state.last_seq, record)
            self._last_cmd_id = cmd_id
            self.last_ts_ns = ts_ns
            ts_ns += 1
            if (self.snapshots and self.snapshot_every_commands and snapshot is None
                    and cmd_id % self.snapshot_every_commands == 0):
                # The consistent copy, between two commands; not written before it is durable.
                snapshot = self.snapshots.copy(state, cmd_id, payloads[-1])
        last_command, _, last_outcome = batch[-1]  # a Tick, when one was due, comes last
        if type(last_command) is cmd.Tick and tick_stopped_at_bound(state.config, last_outcome.events):
            self._next_tick_ns = 0  # the next round ticks again, after the commands waiting by then
        return payloads, snapshot

    # -- the journal thread ------------------------------------------------------------------

    def _queue_write(self, loop, payloads: list[bytes], batch: list, snapshot: SnapshotCopy | None) -> None:
        """Hand a decided batch to the journal thread (start its job if none runs)."""
        self._undurable += 1
        with self._decided_lock:
            self._decided.append((payloads, batch, snapshot))
            idle = not self._writing
            self._writing = True
        if idle:
            self._writer.submit(self._write_queued, loop)

    def _write_queued(self, loop) -> None:
        """On the journal thread: write what waits, group commit after group commit, until
        nothing waits; each durable group goes to the loop (``_durable``) in order."""
        while True:
            with self._decided_lock:
                if not self._decided:
                    self._writing = False
                    return
                group = [self._decided.popleft()]
                commands = len(group[0][1])
                while self._decided and commands + len(self._decided[0][1]) <= self.batch_max:
                    commands += len(self._decided[0][1])
                    group.append(self._decided.popleft())
            try:
                self._write(group)
            except BaseException as error:
                with self._decided_lock:
                    group.extend(self._decided)  # never written: refused with the group
                    self._decided.clear()
                    self._writing = False
                loop.call_soon_threadsafe(self._write_failed, error, group)
                return
            loop.call_soon_threadsafe(self._durable, group)

    def _write(self, group: list) -> None:
        """One group commit of the decided batches in ``group``; then their snapshots."""
        started = time.perf_counter()
        snapshots = [snapshot for _, _, snapshot in group if snapshot is not None]
        try:
            self.journal.append_batch(group[0][0] if len(group) == 1 else
                                      [payload for payloads, _, _ in group for payload in payloads])
        except BaseException:
            for snapshot in snapshots:
                self.snapshots.drop(snapshot)  # its batch never became durable
            raise
        self.last_write_s = time.perf_counter() - started
        for snapshot in snapshots:
            self.snapshots.submit(snapshot)  # after the fsync: a snapshot holds only durable state

    def _durable(self, group: list) -> None:
        """On the loop: acknowledge the batches of a durable group commit, in order."""
        for _, batch, _ in group:
            self.commands_total += len(batch)
            self.batches_total += 1
            self.last_batch_size = len(batch)
            if self.on_durable is not None:  # streams first, then the acks (the order futures gave)
                self.on_durable([(command, outcome) for command, _, outcome in batch])
            for _, reply, outcome in batch:
                _deliver(reply, outcome)
        self._undurable -= len(group)
        self._drained.set()

    def _write_failed(self, error: BaseException, group: list) -> None:
        """On the loop: the journal failed; nothing of ``group`` is durable, none is acked."""
        self._fail(error)
        for _, batch, _ in group:
            for _, reply, _ in batch:
                _deliver(reply, refused(STOPPED, "the venue stopped before this command was durable"))
        self._undurable -= len(group)
        self._drained.set()
        self._wake.set()

    def _fail(self, error: BaseException) -> None:
        """Fail stop: refuse everything waiting; nothing undurable is acknowledged."""
        if self.failed is None:
            self.failed = error
            if isinstance(error, JournalFailed):
                log.critical("journal write failed, the venue stops: %s", error)
        self._stopping = True
        while self._waiting:
            _, reply = self._waiting.popleft()
            _deliver(reply, refused(STOPPED, "the venue stopped before executing this command"))
