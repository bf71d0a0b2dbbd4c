"""The projection runner: one loop per projection, from its checkpoint to the durable tail.

A projection is a name, a handler of batches of journal records, and a checkpoint (the last
seq it applied). The runner:

- reads the journal from ``checkpoint + 1`` in batches of at most ``batch_events`` events
  (``JournalSource``), never beyond the durable seq the tail reports — so a projection never
  sees an event that was not acknowledged;
- runs every read and every ``apply`` off the event loop, in the runner's own thread, one
  bounded batch at a time: the sequencer on the loop is never waited on and never waits;
- follows the tail live: when caught up it waits on the tail's notification (the hub's
  durable-batch listener in the venue), never on a timer; a projection with a ``coalesce_s``
  lets a part batch wait that long for more events (one transaction for many events);
- when ``apply`` raises, logs the seq and the error, asks the projection to ``recover``
  (reload its durable state, e.g. drop caches after a rolled-back transaction), waits a
  backoff with jitter (``RetryPolicy``) and retries **the same batch** — it never skips;
- keeps each projection's lag (seqs and seconds of journal time behind the tail) for
  ``/health``, ``/metrics`` and the status line.

Exactly-once is the projection's half of the contract: a transactional sink commits its
checkpoint in the same transaction as its rows (``ledger.projections.sql``); an external
sink keeps a durable checkpoint and makes every action idempotent by a key derived from the
seq (``ledger.projections.external``).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from ledger.projections.source import BATCH_EVENTS_DEFAULT, BATCH_EVENTS_MAX, BATCH_EVENTS_MIN, JournalSource
from ledger.records import JournalRecord

log = logging.getLogger("agentperp.projections")

# Retry bounds of a failing batch: the first wait, the cap, and the jitter (a fraction of the
# wait, drawn uniformly in ±jitter) so many projections failing on one shared cause (the
# database restarting) do not retry in lockstep.
RETRY_BACKOFF_S_MIN = 0.05
RETRY_BACKOFF_S_MAX = 30.0
RETRY_BACKOFF_FACTOR = 2.0
RETRY_JITTER_FRACTION = 0.25
ERROR_TEXT_MAX = 500  # characters of the last error kept for /health


class Projection(Protocol):
    """What the runner drives. Every method blocks; the runner calls them off the loop."""

    name: str

    def load_checkpoint(self) -> int:
        """The last seq applied and durable (0: nothing yet)."""

    def apply(self, records: list[JournalRecord], after_seq: int) -> int:
        """Apply the events with ``seq > after_seq`` of ``records`` and make them and the new
        checkpoint durable together; return the new checkpoint (the last seq applied)."""

    def recover(self) -> None:
        """After a failed ``apply``: forget anything not durable (the retry starts afresh)."""

    # Optional: ``coalesce_s`` (float seconds, default 0) — how long a batch smaller than the
    # runner's ``batch_events`` may wait for more events before it is applied (``Runner._coalesce``).


@dataclass(frozen=True)
class RetryPolicy:
    backoff_s_min: float = RETRY_BACKOFF_S_MIN
    backoff_s_max: float = RETRY_BACKOFF_S_MAX
    factor: float = RETRY_BACKOFF_FACTOR
    jitter_fraction: float = RETRY_JITTER_FRACTION

    def delay_s(self, attempt: int, rng: random.Random) -> float:
        """The wait before retry number ``attempt`` (1-based)."""
        base = min(self.backoff_s_max, self.backoff_s_min * self.factor ** (attempt - 1))
        return max(0.0, base * (1.0 + rng.uniform(-self.jitter_fraction, self.jitter_fraction)))


@dataclass
class ProjectionStatus:
    """One projection's progress, as /health, /metrics and the status line show it."""

    name: str
    seq: int = 0  # checkpoint: last seq applied and durable
    ts_ns: int = 0  # journal time of that seq's record
    state: str = "starting"  # starting | catching_up | live | retrying | ahead_of_journal | stopped
    failures: int = 0  # failed attempts since start
    retry_attempt: int = 0  # consecutive failures of the current batch (0: healthy)
    failing_seq: int | None = None  # first seq of the batch that fails
    last_error: str = ""
    events_applied: int = 0
    batches_applied: int = 0
    extra: dict = field(default_factory=dict)


class Source(Protocol):
    """Where records come from: a local journal (``JournalSource``) or a stream of it."""

    def read_batch(self, from_seq: int, to_seq: int, events_max: int) -> list[JournalRecord]:
        """Whole records holding events ``from_seq..to_seq``, in order, about ``events_max``."""

    def last_seq(self) -> int:
        """The last seq available now."""


class Tail(Protocol):
    """The durable end of the journal: its last seq and that event's ts_ns, and a wait."""

    last_seq: int
    last_ts_ns: int

    async def wait_beyond(self, seq: int) -> None:
        """Return once ``last_seq > seq`` (or at once if it already is)."""


class MovingTail:
    """A tail moved by whoever learns the durable end (``move``), waited on without polling."""

    def __init__(self, last_seq: int, last_ts_ns: int = 0) -> None:
        self.last_seq = last_seq
        self.last_ts_ns = last_ts_ns
        self._moved = asyncio.Event()

    def move(self, seq: int, ts_ns: int) -> None:
        if seq > self.last_seq:
            self.last_seq, self.last_ts_ns = seq, ts_ns
            self._moved.set()

    async def wait_beyond(self, seq: int) -> None:
        while self.last_seq <= seq:
            self._moved.clear()
            await self._moved.wait()


class HubTail(MovingTail):
    """The tail as the venue's hub reports it: woken by every durable batch (the sequencer's
    durable-seq notification), no polling."""

    def __init__(self, hub, last_ts_ns: int = 0) -> None:
        """``last_ts_ns``: the stamp of the hub's last seq (for the lag in seconds at start)."""
        super().__init__(hub.last_seq, last_ts_ns)
        hub.listen(self._on_durable)

    def _on_durable(self, events: list) -> None:
        last = events[-1]
        self.move(last.seq, last.ts_ns)


class FixedTail:
    """A tail that does not move: catch up to ``last_seq`` (tools, rebuilds, tests)."""

    def __init__(self, last_seq: int, last_ts_ns: int = 0) -> None:
        self.last_seq = last_seq
        self.last_ts_ns = last_ts_ns

    async def wait_beyond(self, seq: int) -> None:
        await asyncio.Event().wait()  # never: the caller stops on caught-up


class StatusBoard:
    """Projections' statuses against a tail: their lag, the summary /health shows, and waits
    on any change. The runner keeps one for the projections it drives; a projection in its
    own process (``ledger.projections.process``) mirrors its child's into one."""

    def __init__(self, names: list[str], tail: Tail | None) -> None:
        self.tail = tail
        self.status = {name: ProjectionStatus(name) for name in names}
        self._progress: asyncio.Condition | None = None  # notified on every change of a status

    async def until(self, predicate: Callable[[], bool]) -> None:
        """Return once ``predicate()`` holds, re-checked at every status change (a batch
        applied, a failure, a state change): what tests and tools wait on, never a timer."""
        async with self._changed():
            await self._progress.wait_for(predicate)

    async def wait_for_seq(self, name: str, seq: int) -> None:
        """Return once projection ``name`` applied every event up to ``seq``."""
        await self.until(lambda: self.status[name].seq >= seq)

    def _changed(self) -> asyncio.Condition:
        if self._progress is None:
            self._progress = asyncio.Condition()
        return self._progress

    async def _notify(self) -> None:
        async with self._changed():
            self._progress.notify_all()

    def lag(self, name: str) -> tuple[int, float]:
        """(seqs behind, seconds of journal time behind) the tail, for projection ``name``."""
        status = self.status[name]
        if self.tail is None:
            return 0, 0.0
        seqs = max(0, self.tail.last_seq - status.seq)
        seconds = 0.0 if seqs == 0 or not status.ts_ns else max(0.0, (self.tail.last_ts_ns - status.ts_ns) / 1e9)
        return seqs, seconds

    def summary(self) -> list[dict]:
        """Every projection's status and lag, JSON-ready."""
        out = []
        for name, status in self.status.items():
            seqs, seconds = self.lag(name)
            out.append({"name": name, "state": status.state, "seq": status.seq, "lag_seq": seqs,
                        "lag_s": round(seconds, 3), "failures": status.failures,
                        "retry_attempt": status.retry_attempt, "failing_seq": status.failing_seq,
                        "last_error": status.last_error, "events_applied": status.events_applied})
        return out


class Runner(StatusBoard):
    """Runs projections over one journal. ``start()`` follows the tail until ``stop()``;
    ``catch_up()`` (blocking, no loop) applies everything up to a seq and returns."""

    def __init__(self, journal_dir, projections: list[Projection], *, tail: Tail | None = None,
                 batch_events: int = BATCH_EVENTS_DEFAULT, retry: RetryPolicy = RetryPolicy(),
                 seed: int | None = None, sleep: Callable[[float], object] = asyncio.sleep,
                 source: Callable[[], Source] | None = None,
                 on_change: Callable[[], None] | None = None) -> None:
        """``source()`` makes each projection's reader (default: ``JournalSource(journal_dir)``;
        e.g. a JetStream stream of the journal, so projections run on other machines);
        ``on_change()`` is called on the loop at every status change (after the waiters are
        woken): a projection process reports its statuses with it."""
        names = [p.name for p in projections]
        if len(set(names)) != len(names):
            raise ValueError(f"projection names must be unique: {names}")
        if not BATCH_EVENTS_MIN <= batch_events <= BATCH_EVENTS_MAX:
            raise ValueError(f"batch_events {batch_events} is outside [{BATCH_EVENTS_MIN}, {BATCH_EVENTS_MAX}]")
        super().__init__(names, tail)
        self.journal_dir = journal_dir
        self.projections = projections
        self.batch_events = batch_events
        self.retry = retry
        self._sleep = sleep
        self._rng = random.Random(seed)
        self._source = source or (lambda: JournalSource(journal_dir))
        self.sources = {p.name: self._source() for p in projections}  # each projection's reader
        # One thread per projection: a slow sink never delays another's batches.
        self._pool = ThreadPoolExecutor(max_workers=max(1, len(projections)), thread_name_prefix="projection")
        self._tasks: list[asyncio.Task] = []
        self._stopping = False
        self._on_change = on_change

    async def _notify(self) -> None:
        await super()._notify()
        if self._on_change is not None:
            self._on_change()

    # -- live -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start one task per projection (each loads its checkpoint first)."""
        assert self.tail is not None, "a live runner needs a tail"
        for projection in self.projections:
            self._tasks.append(asyncio.create_task(self._follow(projection), name=f"projection:{projection.name}"))

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        # A batch being applied finishes (or rolls back) first; waited for off the loop.
        await asyncio.get_running_loop().run_in_executor(None, self._pool.shutdown, True)
        for status in self.status.values():
            status.state = "stopped"

    async def _follow(self, projection: Projection) -> None:
        loop = asyncio.get_running_loop()
        status = self.status[projection.name]
        status.seq = await loop.run_in_executor(self._pool, projection.load_checkpoint)
        if status.seq > self.tail.last_seq:
            # Its output belongs to another (longer) journal: applying would skip seqs. Stop it.
            status.state = "ahead_of_journal"
            status.last_error = (f"checkpoint {status.seq} is beyond the journal's last seq {self.tail.last_seq}: "
                                 f"the read model belongs to another journal; rebuild it")
            log.error("projection %s: %s", projection.name, status.last_error)
            await self._notify()
            return
        status.state = "catching_up"
        coalesce_s = getattr(projection, "coalesce_s", 0.0)
        while not self._stopping:
            durable = self.tail.last_seq
            if status.seq >= durable:
                status.state = "live"
                await self._notify()
                await self.tail.wait_beyond(status.seq)
                if coalesce_s:
                    await self._coalesce(status.seq, coalesce_s)
                continue
            await self._step(projection, durable, loop)
            await self._notify()
            if coalesce_s and 0 < self.tail.last_seq - status.seq < self.batch_events:
                await self._coalesce(status.seq, coalesce_s)

    async def _coalesce(self, seq: int, coalesce_s: float) -> None:
        """Wait until a whole batch is durable after ``seq``, or ``coalesce_s`` has passed:
        a sink whose every batch has a fixed cost (a transaction, a commit's pages) gets
        batches of many events at any load, at the price of that much more lag."""
        try:
            await asyncio.wait_for(self.tail.wait_beyond(seq + self.batch_events - 1), coalesce_s)
        except TimeoutError:
            pass

    async def _step(self, projection: Projection, to_seq: int, loop) -> None:
        """Read and apply one batch after the checkpoint, retrying it until it is applied."""
        status = self.status[projection.name]
        source = self.sources[projection.name]
        while True:
            try:
                records = await loop.run_in_executor(
                    self._pool, source.read_batch, status.seq + 1, to_seq, self.batch_events)
                if not records:
                    return
                new_seq = await loop.run_in_executor(self._pool, projection.apply, records, status.seq)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                await self._failed(projection, error, loop)
                continue
            self._applied(status, records, new_seq)
            return

    def _applied(self, status: ProjectionStatus, records: list[JournalRecord], new_seq: int) -> None:
        assert new_seq == records[-1].last_seq, (status.name, new_seq, records[-1].last_seq)
        status.events_applied += new_seq - status.seq
        status.batches_applied += 1
        status.seq, status.ts_ns = new_seq, records[-1].ts_ns
        if status.retry_attempt:
            log.warning("projection %s: recovered at seq %d after %d failed attempts",
                        status.name, status.failing_seq, status.retry_attempt)
        status.retry_attempt, status.failing_seq, status.last_error = 0, None, ""
        if status.state == "retrying":
            status.state = "catching_up"

    async def _failed(self, projection: Projection, error: Exception, loop) -> None:
        status = self.status[projection.name]
        status.failures += 1
        status.retry_attempt += 1
        status.failing_seq = status.seq + 1
        status.last_error = f"{type(error).__name__}: {error}"[:ERROR_TEXT_MAX]
        status.state = "retrying"
        delay_s = self.retry.delay_s(status.retry_attempt, self._rng)
        log.error("projection %s: batch from seq %d failed (attempt %d), retrying the same seq in %.2f s: %s",
                  projection.name, status.failing_seq, status.retry_attempt, delay_s, status.last_error)
        try:
            checkpoint = await loop.run_in_executor(self._pool, _recover, projection)
        except Exception as recover_error:  # e.g. the database is down: the next attempt recovers again
            log.error("projection %s: recover failed: %s", projection.name, recover_error)
        else:
            if checkpoint != status.seq:  # e.g. `projections rebuild` reset it: the durable one is the truth
                log.warning("projection %s: durable checkpoint is %d, not %d: continuing from it",
                            projection.name, checkpoint, status.seq)
                status.seq = checkpoint
        await self._notify()
        await self._sleep(delay_s)

    # -- catch up (blocking) ----------------------------------------------------------------

    def catch_up(self, to_seq: int | None = None) -> dict[str, int]:
        """Apply every projection up to ``to_seq`` (default: the journal's end now) in this
        thread; failures retry like the live runner (blocking sleeps). The checkpoints."""
        if to_seq is None:
            to_seq = self._source().last_seq()
        if self.tail is None:
            self.tail = FixedTail(to_seq)
        out = {}
        for projection in self.projections:
            status = self.status[projection.name]
            status.seq = projection.load_checkpoint()
            status.state = "catching_up"
            source = self.sources[projection.name]
            while status.seq < to_seq:
                try:
                    records = source.read_batch(status.seq + 1, to_seq, self.batch_events)
                    if not records:
                        break
                    new_seq = projection.apply(records, status.seq)
                except Exception as error:
                    status.failures += 1
                    status.retry_attempt += 1
                    status.failing_seq = status.seq + 1
                    status.last_error = f"{type(error).__name__}: {error}"[:ERROR_TEXT_MAX]
                    log.error("projection %s: batch from seq %d failed (attempt %d): %s", projection.name,
                              status.failing_seq, status.retry_attempt, status.last_error)
                    # The durable checkpoint is the truth (a commit may have landed before the error).
                    status.seq = _recover(projection)
                    time.sleep(self.retry.delay_s(status.retry_attempt, self._rng))
                    continue
                self._applied(status, records, new_seq)
            status.state = "live"
            out[projection.name] = status.seq
        return out


def _recover(projection: Projection) -> int:
    projection.recover()
    return projection.load_checkpoint()
