"""The hub: fan-out of durable events to subscribers, with backfill from the journal.

The sequencer hands the hub each batch once it is durable (``publish``); a subscription
starting at ``from_seq`` reads everything up to the hub's durable seq at the moment it
subscribed from the journal, then continues with the live events after that seq — so a
subscriber sees every matching event exactly once, in seq order, across the switch.

Each subscription buffers at most ``queue_max`` live events; one that falls further behind
is ended with ``SubscriptionOverflow`` (the gateway disconnects that slow consumer; the
venue is never slowed by it).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import closing
from pathlib import Path

from ledger.journal import JournalReader
from ledger.records import decode_record

BACKFILL_CHUNK_EVENTS = 5_000

Predicate = Callable[[object], bool]


class SubscriptionOverflow(Exception):
    """The subscriber fell more than its queue behind the live stream."""


class Subscription:
    def __init__(self, hub: Hub, from_seq: int, predicate: Predicate, queue_max: int):
        self.hub = hub
        self.from_seq = max(1, from_seq)
        self.predicate = predicate
        self.queue_max = queue_max
        self.live_after_seq = hub.last_seq  # backfill covers [from_seq, live_after_seq]
        self._live: deque = deque()
        self._ready = asyncio.Event()
        self.overflowed = False

    def offer(self, events: list) -> None:
        if self.overflowed:
            return
        for event in events:
            if event.seq >= self.from_seq and self.predicate(event):
                self._live.append(event)
        if len(self._live) > self.queue_max:
            self.overflowed = True
            self._live.clear()
        self._ready.set()

    def close(self) -> None:
        self.hub._subscribers.discard(self)

    async def batches(self) -> AsyncIterator[list]:
        """Lists of matching events in seq order: the backfill, then live, without end."""
        try:
            next_seq = self.from_seq
            loop = asyncio.get_running_loop()
            while next_seq <= self.live_after_seq:
                chunk, next_seq = await loop.run_in_executor(
                    None, self.hub.lookups.events, next_seq, self.live_after_seq, BACKFILL_CHUNK_EVENTS)
                matching = [event for event in chunk if self.predicate(event)]
                if matching:
                    yield matching
            while True:
                await self._ready.wait()
                self._ready.clear()
                if self.overflowed:
                    raise SubscriptionOverflow(f"more than {self.queue_max} events behind the live stream")
                if self._live:
                    items = list(self._live)
                    self._live.clear()
                    yield items
        finally:
            self.close()


class Hub:
    def __init__(self, journal_dir: Path | str, last_seq: int):
        self.journal_dir = Path(journal_dir)
        self.lookups = JournalLookups(self.journal_dir)
        self.last_seq = last_seq  # every event up to here is durable and was published
        self._subscribers: set[Subscription] = set()
        self._listeners: list[Callable[[list], None]] = []

    def subscribe(self, from_seq: int, predicate: Predicate, queue_max: int) -> Subscription:
        subscription = Subscription(self, from_seq, predicate, queue_max)
        self._subscribers.add(subscription)
        return subscription

    def listen(self, listener: Callable[[list], None]) -> None:
        """Call ``listener(events)`` with every durable batch's events (status, metrics)."""
        self._listeners.append(listener)

    def publish(self, executed: list) -> None:
        """``executed``: the durable batch as (command, outcome) pairs, in order."""
        events = [event for _, outcome in executed for event in outcome.events]
        if not events:
            return
        self.last_seq = events[-1].seq
        for listener in self._listeners:
            listener(events)
        for subscription in list(self._subscribers):
            subscription.offer(events)

    async def record_of(self, seq: int):
        """The durable journal record holding event ``seq`` (None if it is not on disk yet):
        how the gateways answer a repeated client_id with the first execution's result."""
        if not 1 <= seq <= self.last_seq:
            return None
        return await asyncio.get_running_loop().run_in_executor(None, self.lookups.record, seq)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)


class JournalLookups:
    """The gateways' reads of the journal by seq — subscription backfill, the HTTP events
    pages, the dashboard's history, a repeated client_id's first result — through one reader
    whose sparse indexes persist between reads: a new reader per read would seek the
    segment still being written (no index file yet) from its start, each read costing up to
    a whole segment (64 MiB). Reads run in executor threads, one at a time (a reader is not
    thread-safe); each is bounded (``limit`` events, or one record)."""

    def __init__(self, journal_dir: Path) -> None:
        self._reader = JournalReader(journal_dir)
        self._lock = threading.Lock()

    def events(self, from_seq: int, to_seq: int, limit: int) -> tuple[list, int]:
        """Events with ``from_seq <= seq <= to_seq`` from the journal, at most about ``limit``
        (whole records); and the seq to continue from."""
        found: list = []
        next_seq = from_seq
        with self._lock, closing(self._reader.read(from_seq=from_seq)) as records:
            for header, payload in records:
                if header.first_seq > to_seq or len(found) >= limit:
                    break
                if header.last_seq < from_seq:
                    continue
                for event in decode_record(payload).events:
                    if from_seq <= event.seq <= to_seq:
                        found.append(event)
                        next_seq = event.seq + 1
        if not found and next_seq <= to_seq:
            next_seq = to_seq + 1  # nothing left in range (cannot happen for durable seqs)
        return found, next_seq

    def record(self, seq: int):
        """The journal record holding event ``seq`` (None if there is none)."""
        with self._lock, closing(self._reader.read(from_seq=seq)) as records:
            for header, payload in records:
                if header.first_seq <= seq <= header.last_seq:
                    return decode_record(payload)
                if header.first_seq > seq:
                    break
        return None
