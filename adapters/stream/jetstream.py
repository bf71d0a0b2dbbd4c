"""The journal on NATS JetStream (DESIGN §10): a publisher that is a projection, and a source
the projection runner reads from on other machines.

- ``JetStreamPublisher`` — an **external sink** on the runner: every journal record that
  carries events becomes one message on ``SUBJECT`` (the record's msgpack payload), with
  ``Nats-Msg-Id`` = its cmd_id, so a publisher restarted after a crash republishes the batch
  since its checkpoint and JetStream drops the duplicates (within ``DUPLICATE_WINDOW_S``).
  Its checkpoint (last seq acknowledged by the server) is a ``FileCheckpoint``. Records
  without events (rejections, kept for audit) are not published: they change no state.
  The one exception is the journal's **genesis record** (cmd_id 1, the engine configuration,
  DESIGN §7): a publisher starting from seq 0 sends it first, so it is the stream's first
  message (Msg-Id 1: sent again by a restarted publisher, it is dropped as a duplicate).
- ``JetStreamSource`` — what the runner reads instead of a local journal: the message
  holding a journal seq is found by binary search over the stream (each message's headers
  carry its first and last seq), then read in order by an ordered pull from there. The
  genesis' headers are its own seqs (first 1, last 0: it holds no event), so the last seqs
  along the stream still never decrease and a search for a seq >= 1 never lands on it.
  ``read_genesis`` / ``journal_config`` give a reader the configuration from the stream.

nats-py is asyncio; the runner calls projections and sources from its threads. Each object
owns one private event loop in a daemon thread (``ledger.projections.external.LoopThread``) and waits on it with a
bounded timeout.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec

from engine.markets import EngineConfig
from ledger.genesis import JournalConfig, config_of, read_genesis_record
from ledger.projections.external import FileCheckpoint, LoopThread
from ledger.records import GENESIS_CMD_ID, Genesis, JournalRecord

STREAM_DEFAULT = "AGENTPERP_JOURNAL"
SUBJECT_DEFAULT = "agentperp.journal"
HEADER_MSG_ID = "Nats-Msg-Id"
HEADER_FIRST_SEQ = "Agentperp-First-Seq"
HEADER_LAST_SEQ = "Agentperp-Last-Seq"
DUPLICATE_WINDOW_S = 24 * 3_600  # a publisher restarted within a day never duplicates
PUBLISH_INFLIGHT_MAX = 512  # publishes awaiting their ack, at most
FETCH_MESSAGES_MAX = 1_000  # per pull request
CALL_TIMEOUT_S = 30.0  # one publish batch or read, at most, before it counts as a failure
CONNECT_TIMEOUT_S = 5.0

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(JournalRecord)


class _Client:
    """A lazily (re)connected JetStream context on a private loop."""

    def __init__(self, url: str, stream: str, subject: str, name: str) -> None:
        self.url, self.stream, self.subject = url, stream, subject
        self.runner = LoopThread(name)
        self.nc = None
        self.js = None

    async def _connect(self):
        import nats
        from nats.js.api import StreamConfig

        if self.js is None:
            self.nc = await nats.connect(self.url, connect_timeout=CONNECT_TIMEOUT_S, max_reconnect_attempts=0)
            self.js = self.nc.jetstream()
            await self.js.add_stream(StreamConfig(name=self.stream, subjects=[self.subject],
                                                  duplicate_window=DUPLICATE_WINDOW_S))
        return self.js

    def reset(self) -> None:
        """Drop the connection (after a failure): the next call reconnects."""
        nc, self.nc, self.js = self.nc, None, None
        if nc is not None:
            try:
                self.runner.call(nc.close(), CONNECT_TIMEOUT_S)
            except Exception:
                pass

    def close(self) -> None:
        self.reset()
        self.runner.close()


def ensure_stream(url: str, stream: str = STREAM_DEFAULT, subject: str = SUBJECT_DEFAULT) -> None:
    """Create the stream if it does not exist (the publisher does it too)."""
    client = _Client(url, stream, subject, "jetstream-setup")
    try:
        client.runner.call(client._connect())
    finally:
        client.close()


class JetStreamPublisher:
    """The journal -> JetStream, as a projection of the runner (an external sink)."""

    def __init__(self, url: str, checkpoint_path: Path | str, journal_dir: Path | str, *,
                 stream: str = STREAM_DEFAULT, subject: str = SUBJECT_DEFAULT, name: str = "jetstream") -> None:
        self.name = name
        self.journal_dir = Path(journal_dir)  # where the genesis record is read from
        self.checkpoint = FileCheckpoint(checkpoint_path)
        self.client = _Client(url, stream, subject, f"{name}-publisher")
        self.duplicates = 0  # acks that JetStream marked duplicate (a republished batch)

    def load_checkpoint(self) -> int:
        return self.checkpoint.load()

    def recover(self) -> None:
        self.client.reset()

    def apply(self, records: list[JournalRecord], after_seq: int) -> int:
        last = self.client.runner.call(self._publish(records, after_seq))
        self.checkpoint.save(last)  # after every ack: a crash before it republishes, deduplicated
        return last

    async def _publish(self, records: list[JournalRecord], after_seq: int) -> int:
        js = await self.client._connect()
        subject = self.client.subject
        window = asyncio.Semaphore(PUBLISH_INFLIGHT_MAX)

        async def one(record: JournalRecord):
            async with window:
                return await js.publish(subject, _encoder.encode(record), headers={
                    HEADER_MSG_ID: str(record.cmd_id), HEADER_FIRST_SEQ: str(record.first_seq),
                    HEADER_LAST_SEQ: str(record.last_seq)})

        acks = []
        if after_seq == 0:  # from the start: the genesis goes first (the runner reads from seq 1, past it)
            genesis = read_genesis_record(self.journal_dir)
            if genesis is not None:  # None: a journal written before genesis records
                acks.append(await one(genesis))
        wanted = [record for record in records if record.last_seq > after_seq and record.events]
        acks += await asyncio.gather(*(one(record) for record in wanted))
        self.duplicates += sum(1 for ack in acks if ack.duplicate)
        return records[-1].last_seq

    def close(self) -> None:
        self.client.close()


class JetStreamSource:
    """Journal records from a JetStream stream, for ``Runner(source=...)``."""

    def __init__(self, url: str, *, stream: str = STREAM_DEFAULT, subject: str = SUBJECT_DEFAULT) -> None:
        self.client = _Client(url, stream, subject, "jetstream-source")
        self._next: tuple[int, int] | None = None  # (journal seq, stream seq) where the last read ended

    def last_seq(self) -> int:
        return self.client.runner.call(self._last_seq())

    def read_batch(self, from_seq: int, to_seq: int, events_max: int) -> list[JournalRecord]:
        try:
            return self.client.runner.call(self._read(from_seq, to_seq, events_max))
        except Exception:
            self.client.reset()
            self._next = None
            raise

    def read_genesis(self) -> Genesis | None:
        """The journal's genesis from the stream's first message; None if that is not one (a
        journal written before genesis records, or nothing published yet)."""
        try:
            return self.client.runner.call(self._read_genesis())
        except Exception:
            self.client.reset()
            raise

    def journal_config(self, assumed: EngineConfig | None = None) -> JournalConfig:
        """The configuration to read the stream's journal with (``ledger.genesis.config_of``)."""
        where = f"the journal on stream {self.client.stream} at {self.client.url}"
        return config_of(self.read_genesis(), where, assumed)

    def close(self) -> None:
        self.client.close()

    async def _read_genesis(self) -> Genesis | None:
        js = await self.client._connect()
        state = (await js.stream_info(self.client.stream)).state
        if not state.last_seq:
            return None
        message = await js.get_msg(self.client.stream, state.first_seq)
        if int(message.headers[HEADER_MSG_ID]) != GENESIS_CMD_ID:
            return None
        command = _decoder.decode(message.data).command
        return command if type(command) is Genesis else None

    async def _last_seq(self) -> int:
        js = await self.client._connect()
        last = (await js.stream_info(self.client.stream)).state.last_seq
        if not last:
            return 0
        return int((await js.get_msg(self.client.stream, last)).headers[HEADER_LAST_SEQ])

    async def _stream_seq_of(self, js, seq: int) -> int | None:
        """The stream position of the message holding journal seq ``seq`` (or the first
        after it); None if the stream ends before it. Binary search: O(log n) gets."""
        state = (await js.stream_info(self.client.stream)).state
        low, high = state.first_seq, state.last_seq
        if not high:
            return None
        found = None
        while low <= high:
            middle = (low + high) // 2
            headers = (await js.get_msg(self.client.stream, middle)).headers
            if int(headers[HEADER_LAST_SEQ]) >= seq:
                found, high = middle, middle - 1
            else:
                low = middle + 1
        return found

    async def _read(self, from_seq: int, to_seq: int, events_max: int) -> list[JournalRecord]:
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        js = await self.client._connect()
        if self._next is not None and self._next[0] == from_seq:
            start = self._next[1]
        else:
            start = await self._stream_seq_of(js, from_seq)
            if start is None:
                return []
        last_stream = (await js.stream_info(self.client.stream)).state.last_seq
        subscription = await js.pull_subscribe(
            self.client.subject, durable=None, stream=self.client.stream,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start,
                                  ack_policy=AckPolicy.NONE, inactive_threshold=60.0))
        records: list[JournalRecord] = []
        events = 0
        position = start  # the stream seq of the next message not consumed
        done = False
        try:
            while not done and position <= last_stream:
                wanted = min(FETCH_MESSAGES_MAX, last_stream - position + 1)
                for message in await subscription.fetch(wanted, timeout=CALL_TIMEOUT_S / 2):
                    record = _decoder.decode(message.data)
                    if record.first_seq > to_seq:
                        done = True  # beyond the caller's bound: leave it for the next read
                        break
                    position = message.metadata.sequence.stream + 1
                    if record.last_seq >= from_seq:
                        records.append(record)
                        events += record.last_seq - record.first_seq + 1
                    if events >= events_max or record.last_seq >= to_seq:
                        done = True
                        break
        finally:
            await subscription.unsubscribe()
        self._next = (records[-1].last_seq + 1, position) if records else None
        return records
