"""Open a journal for replay and read its records, fast and with clear errors.

``ReplayJournal(path)`` accepts a journal directory (the ``*.seg`` files) or a data
directory holding ``journal/``. Records are read through ``ledger.journal.JournalReader``
(``read_spans``: crc, length and cmd_id/seq continuity checked there, payloads handed over a
chunk at a time as spans of the buffer read) and decoded by msgspec in batches of
``BATCH_RECORDS`` payloads (one decoder call per batch, not per record, over the payloads
laid end to end by ``PayloadSpans.msgpack_array``, or for verify's ``event_runs`` the items
of every record's events array by ``PayloadSpans.msgpack_items``).

Errors: no journal at the path -> ``NotAJournal``; damaged bytes -> ``JournalDamaged`` with
the segment and offset; a tag this version does not know -> ``JournalTooNew`` naming it.

The engine configuration comes from the journal's genesis record (``ReplayJournal.config``,
``ledger.genesis``); a journal written before genesis records is read with the configuration
the caller assumes (``default_config()`` by default) and a notice (``config_notice``).
"""

from __future__ import annotations

import fcntl
import gc
import mmap
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec
import numpy as np

from engine.commands import COMMAND_TYPES, Command
from engine.events import EVENT_TYPES, Event
from engine.markets import EngineConfig
from engine.rejections import Rejected
from ledger.codec import PayloadSpans, decode_header
from ledger.genesis import ConfigChanged, journal_config
from ledger.journal import READ_CHUNK_BYTES_DEFAULT, JournalCorrupt, JournalReader, Segment, list_segments
from ledger.recovery import JOURNAL_DIR, SNAPSHOT_DIR
from ledger.records import EVENTS_FIELD, GENESIS_CMD_ID, GENESIS_TAG, Genesis, JournalRecord
from replay.errors import ConfigMismatch, JournalDamaged, JournalTooNew, NotAJournal


# Payloads decoded per msgspec call. A batch's decoded objects (records, events, transfers,
# lists, strings: ~10x the payload) are applied and then freed before the next batch is
# decoded into the same memory, so a batch small enough for its objects to stay in the CPU
# cache is faster: 256 records (~50 KiB of payload) took ~20% less CPU per event in verify
# than 4 096 when each record's events came as their own list. Since verify's runs are one
# flat list (``event_runs``), the per-run costs weigh more: 1 024 records took 0.975x
# [0.968 - 1.017] the CPU per event of 256 (7 interleaved passes over a 50 000-event
# journal; 0.982x [0.977 - 0.983] over 300 000), 2 048 no less, 8 192 more.
BATCH_RECORDS = 1_024

# Verify's read in a second process (``ReplayJournal.event_runs(read_ahead=True)``): worth
# its fork (~2 - 3 ms, this process waiting) and the copies of the pages both then write only
# over a journal of at least this many bytes of segments (~20 000 events).
READ_AHEAD_BYTES_MIN = 4 << 20
# A run's events' msgpack is written into one of READ_AHEAD_SLOTS slots of memory shared
# with the reader (decoded there, with no copy through the kernel and no buffer allocated
# per run), and the pipe carries int64s: its first cmd_id, whether the marked type may be
# among its events, its slot (-1: too big for one, its bytes follow on the pipe), its size
# in bytes, then each record's event count. What waits is bounded by the slots, the pipe's
# buffer and one run on each side.
READ_AHEAD_SLOTS = 8
READ_AHEAD_SLOT_BYTES = 1 << 20  # a run of BATCH_RECORDS records is ~140 KiB on the generated mix
_READ_AHEAD_END = b""  # the reader's last message: every record was sent (without it: damage, or it died)
# The records of the journal's first this many bytes (from where the read starts) are read
# and decoded by verify's own process while the reader process starts (~2 ms for its fork,
# ~3 ms to its first run): about as long, at ~1.4 µs an event.
READ_AHEAD_HEAD_BYTES = 384 << 10
READ_AHEAD_PIPE_BYTES = 1 << 20  # the pipe's buffer: several runs ahead (Linux's pipe-max-size by default)
READ_AHEAD_EXIT_WAIT_S = 5.0  # after the last run, how long the reader gets to exit before it is killed

_COMMAND_TAGS = frozenset(t.__struct_config__.tag for t in COMMAND_TYPES) | {GENESIS_TAG}
_EVENT_TAGS = frozenset(t.__struct_config__.tag for t in EVENT_TYPES)
_REJECTION_TAGS = frozenset({Rejected.__struct_config__.tag})


class EventRecord(msgspec.Struct, frozen=True, array_like=True):
    """A journal record with its command and rejection left undecoded (``msgspec.Raw``):
    what a replay that only applies events needs. ``decode_command()`` decodes the rest."""

    cmd_id: int
    first_seq: int
    last_seq: int
    ts_ns: int
    command: msgspec.Raw
    events: list[Event]


_record_batch_decoder = msgspec.msgpack.Decoder(list[JournalRecord])
_events_flat_decoder = msgspec.msgpack.Decoder(list[Event])
_event_batch_decoder = msgspec.msgpack.Decoder(list[EventRecord])
_record_decoder = msgspec.msgpack.Decoder(JournalRecord)
_command_decoder = msgspec.msgpack.Decoder(Command | Genesis)
_any_decoder = msgspec.msgpack.Decoder()


class EventRun(msgspec.Struct, frozen=True, gc=False):
    """The events of consecutive records in one flat list: record ``first_cmd_id + i``
    caused the next ``counts[i]`` of them (0 for a record without events), in order.
    ``may_hold_marked`` is False when, for certain, no event of the type the run was read
    for (``ReplayJournal.event_runs``) is among them."""

    first_cmd_id: int
    events: list[Event]
    counts: list[int]
    may_hold_marked: bool

    def by_record(self) -> Iterator[tuple[int, list[Event]]]:
        """``(cmd_id, its events)`` of each record, in order."""
        start = 0
        for cmd_id, count in enumerate(self.counts, self.first_cmd_id):
            yield cmd_id, self.events[start:start + count]
            start += count


def _whole(decoder: msgspec.msgpack.Decoder) -> Callable[[PayloadSpans, int, int], list]:
    """Decode a batch's whole payloads with ``decoder`` (of a list of records)."""
    return lambda spans, first, last: decoder.decode(spans.msgpack_array(first, last))


def decode_command(raw: msgspec.Raw | bytes):
    """Decode the command of an ``EventRecord``."""
    return _command_decoder.decode(raw)


def resolve(path: Path | str) -> Path:
    """Return the journal directory at ``path`` (itself, or its ``journal/``), or raise
    ``NotAJournal`` / ``JournalDamaged``."""
    path = Path(path)
    if not path.exists():
        raise NotAJournal(path, "no such file or directory")
    if not path.is_dir():
        raise NotAJournal(path, "a file, not a directory (give the data directory or its journal/ folder)")
    candidates = [path, path / JOURNAL_DIR] if (path / JOURNAL_DIR).is_dir() else [path]
    for directory in candidates:
        try:
            segments = list_segments(directory)
        except JournalCorrupt as exc:
            raise JournalDamaged(str(exc), exc.path, exc.offset) from None
        if segments:
            return directory
    raise NotAJournal(path, "no segment files (*.seg) here or in journal/")


def may_fork_children() -> bool:
    """Whether this process can fork helpers: ``fork`` exists here (the child inherits this
    process: no imports, no pickling), and it is not a daemonic process (a
    ``multiprocessing`` pool's worker), which may not have children."""
    return "fork" in multiprocessing.get_all_start_methods() and not multiprocessing.current_process().daemon


@contextmanager
def gc_paused():
    """Pause the cyclic GC: replay allocates millions of short-lived acyclic objects, and
    generation-0 collections would otherwise cost as much as the decoding itself."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class ReplayJournal:
    """A journal opened read-only for replay (safe beside a live writer)."""

    def __init__(self, path: Path | str, *, batch_records: int = BATCH_RECORDS,
                 read_chunk_bytes: int = READ_CHUNK_BYTES_DEFAULT) -> None:
        self.directory = resolve(path)
        self.batch_records = batch_records
        self._reader = JournalReader(self.directory, read_chunk_bytes=read_chunk_bytes)
        self.genesis: Genesis | None = None
        self.config_notice = ""  # set when the journal has no genesis record

    def config(self, assumed: EngineConfig | None = None) -> EngineConfig:
        """The engine configuration the journal was written with: its genesis record's.

        ``assumed`` is used only for a journal without one (default ``default_config()``,
        with ``config_notice`` set); given for a journal with one, it must be equal, else
        ``ConfigMismatch`` lists what differs.
        """
        try:
            found = journal_config(self.directory, assumed)
        except ConfigChanged as exc:
            raise ConfigMismatch(str(exc)) from None
        except JournalCorrupt as exc:
            raise JournalDamaged(str(exc), exc.path, exc.offset) from None
        except msgspec.DecodeError as exc:
            raise JournalDamaged(f"the first record of {self.directory} does not decode: {exc}") from None
        self.genesis, self.config_notice = found.genesis, found.notice
        return found.config

    def segments(self) -> list[Segment]:
        return self._reader.segments()

    def last(self) -> tuple[int, int]:
        """``(last_cmd_id, last_seq)`` of the valid records now on disk (scans the last segment)."""
        try:
            end = self._reader.segment_end(self.segments()[-1])
        except JournalCorrupt as exc:
            raise JournalDamaged(str(exc), exc.path, exc.offset) from None
        return end.last_cmd_id, end.last_seq

    def last_seq(self) -> int:
        """The last seq of the valid records now on disk (scans the last segment)."""
        return self.last()[1]

    def last_seq_estimate(self) -> int:
        """``last_seq`` estimated from the segments' sizes and indexes, reading no record
        (``JournalReader.last_seq_estimate``); the scan when that knows nothing (one
        segment without its index yet)."""
        return self._reader.last_seq_estimate() or self.last_seq()

    @property
    def snapshot_dir(self) -> Path | None:
        """The data directory's snapshots (``ledger.recovery.SNAPSHOT_DIR``), when the
        journal is a data directory's ``journal/``; None for a journal directory elsewhere."""
        if self.directory.name != JOURNAL_DIR:
            return None
        return self.directory.parent / SNAPSHOT_DIR

    # -- decoded records ------------------------------------------------------------------

    def event_runs(self, from_seq: int = 1, marked: type | None = None, *,
                   read_ahead: bool | None = False) -> Iterator[EventRun]:
        """The records' events alone, ``batch_records`` records at a time as one flat list
        each (``EventRun``: one list and its structs, no record, command or list per record),
        each run saying whether an event of type ``marked`` may be among them (always, with
        no ``marked``). The fast pass of verify: the same events as ``event_record_batches``,
        held so by tests/replay/test_decode_batches.py.

        ``read_ahead``: the frames, crc and gathering of each run's events are done by a
        forked process (``_read_ahead``) while this one decodes and the caller applies: the
        same runs, ~1/4 of the work moved to a second core; None: when that pays
        (``read_ahead_pays``)."""
        if read_ahead is None:
            read_ahead = self.read_ahead_pays()
        if read_ahead:
            yield from self._runs_read_ahead(from_seq, marked)
            return
        yield from self._runs_here(self._reader.read_spans(from_seq), marked)

    def _runs_here(self, chunks: Iterable[PayloadSpans], marked: type | None) -> Iterator[EventRun]:
        """``event_runs`` of ``chunks``, gathered and decoded in this process."""
        decode = _events_flat_decoder.decode
        gather = _run_gatherer(marked)

        def run(spans: PayloadSpans, first: int, last: int) -> EventRun:
            first_cmd_id, gathered, counts, may_hold_marked = gather(spans, first, last)
            return EventRun(first_cmd_id, decode(gathered), counts.tolist(), may_hold_marked)

        for _, _, decoded in self._decoded_batches(chunks, run):
            yield decoded
            del decoded  # not held while the next run decodes (see _decoded_batches)

    def read_ahead_pays(self) -> bool:
        """Whether ``event_runs(read_ahead=True)`` is worth it here: a second core, ``fork``
        (the reader inherits this process: no imports, no pickling), and a journal big
        enough to repay the fork; not in a daemonic process (a ``multiprocessing`` pool's
        worker), which may not have children."""
        if (os.cpu_count() or 1) < 2 or not may_fork_children():
            return False
        return sum(segment.path.stat().st_size for segment in self.segments()) >= READ_AHEAD_BYTES_MIN

    def _runs_read_ahead(self, from_seq: int, marked: type | None) -> Iterator[EventRun]:
        # The head (the records of the first READ_AHEAD_HEAD_BYTES) is read and decoded here
        # while the reader starts, and the reader skips it: without it, this process only
        # waited for the fork's first run.
        context = multiprocessing.get_context("fork")
        try:
            slots = _Slots(context)
        except (OSError, ImportError):  # no working sem_open here (e.g. no /dev/shm): read in this process
            yield from self._runs_here(self._reader.read_spans(from_seq), marked)
            return
        head = self._head_spans(from_seq)
        receive, send = context.Pipe(duplex=False)
        _widen(receive)
        reader = context.Process(target=_read_ahead, args=(self, from_seq, marked, send, receive, slots,
                                                            sum(map(len, head))),
                                 daemon=True, name="agentperp-read-ahead")
        reader.start()
        send.close()  # the reader's end: once it exits, a read here ends (EOFError), never hangs
        decode = _events_flat_decoder.decode
        try:
            yield from self._runs_here(head, marked)
            while True:
                try:
                    header = receive.recv_bytes()
                    if header == _READ_AHEAD_END:
                        return
                    first_cmd_id, may_hold_marked, slot, size_bytes, *counts = np.frombuffer(header, np.int64).tolist()
                    if slot < 0:
                        events = decode(receive.recv_bytes())
                    else:
                        events = decode(slots.view(slot, size_bytes))  # copies out all it keeps
                        slots.free.release()
                except (EOFError, OSError, msgspec.DecodeError):
                    break
                yield EventRun(first_cmd_id, events, counts, bool(may_hold_marked))
                del events  # not held while the next run decodes (see _decoded_batches)
        finally:
            receive.close()  # a reader still sending meets a closed pipe and exits
            slots.unblock()  # ... also one waiting for a slot
            reader.join(READ_AHEAD_EXIT_WAIT_S)
            if reader.is_alive():
                reader.kill()
                reader.join()
            slots.close()
        # The reader met damage (it ends without the end mark), died, or sent a run that does
        # not decode: the sequential
        # pass over the same records raises the error that says what and where.
        for _ in self.event_runs(from_seq, marked):
            pass
        raise JournalDamaged(f"verify's read-ahead process failed reading {self.directory}, though the journal "
                             f"reads whole in one process: a bug in replay (or the process was killed), report it")

    def event_record_batches(self, from_seq: int = 1) -> Iterator[list[EventRecord]]:
        """Batches of ``EventRecord`` (commands left undecoded)."""
        for _, _, records in self._decoded_batches(self._reader.read_spans(from_seq), _whole(_event_batch_decoder)):
            yield records
            del records  # not held while the next batch decodes (see _decoded_batches)

    def record_batches(self, from_seq: int = 1) -> Iterator[list[JournalRecord]]:
        """Batches of fully decoded ``ledger.records.JournalRecord`` of engine commands (the
        genesis record, which no engine executes, is left out: see ``config``)."""
        for _, _, records in self._decoded_batches(self._reader.read_spans(from_seq), _whole(_record_batch_decoder)):
            if records[0].cmd_id == GENESIS_CMD_ID and type(records[0].command) is Genesis:
                records = records[1:]
                if not records:
                    continue
            yield records
            del records  # not held while the next batch decodes (see _decoded_batches)

    def records(self, from_seq: int = 1) -> Iterator[JournalRecord]:
        """Every record with ``last_seq >= from_seq`` (records without events included once
        ``from_seq`` is reached), in order."""
        for batch in self.record_batches(from_seq):
            yield from batch
            del batch  # not held while the next batch decodes (see _decoded_batches)

    def events(self, from_seq: int = 1) -> Iterator[Event]:
        """Every event with ``seq >= from_seq``, in order, as the engine's structs."""
        for run in self.event_runs(from_seq):
            for event in run.events:
                if event.seq >= from_seq:
                    yield event
            del run  # not held while the next run decodes (see _decoded_batches)

    def _head_spans(self, from_seq: int) -> list[PayloadSpans]:
        """The first chunk of ``read_spans(from_seq)`` read ``READ_AHEAD_HEAD_BYTES`` at a
        time: a prefix of what this journal's own reader yields from ``from_seq`` (none when
        there is nothing to read, or the head is damaged: the caller's reading then says
        where)."""
        reader = JournalReader(self.directory, read_chunk_bytes=READ_AHEAD_HEAD_BYTES)
        try:
            return [next(reader.read_spans(from_seq))]
        except (StopIteration, JournalCorrupt):
            return []

    def _decoded_batches(self, chunks: Iterable[PayloadSpans], decode: Callable[[PayloadSpans, int, int], object]
                         ) -> Iterator[tuple[PayloadSpans, int, object]]:
        """The records of ``chunks`` (the reader's ``read_spans``, or part of it), ``batch_records``
        at a time, each batch decoded by ``decode(spans, first, last)`` (payloads
        ``first..last-1`` of a chunk's ``spans``, straight from the chunk read: one decoder call
        per batch over the payloads, or their
        fields, laid end to end). Yields ``(spans, first, decoded)``; a batch that does not
        decode (``msgspec.DecodeError``) is explained by ``_explain_batch``.

        A batch is dropped here before the next one is decoded, and callers drop theirs too
        (``del`` after the yield, or at the end of their loop's body): the next batch's
        objects are then allocated in the memory the last one's just freed, still in the
        CPU's cache. Held across the decode, the two batches' objects (~2x 0.5 MB) leave
        the cache between uses: freed first, verify takes 0.91x / 0.95x the CPU per event
        (a 50 000-event journal, two runs of 61 interleaved passes, medians of the ratios)
        and 0.91x over 300 000 events (11 passes)."""
        size = self.batch_records
        try:
            for spans in chunks:
                count = len(spans)
                for first in range(0, count, size):
                    last = min(first + size, count)
                    try:
                        decoded = decode(spans, first, last)
                    except msgspec.DecodeError:
                        raise self._explain_batch(spans.payloads(first, last)) from None
                    yield spans, first, decoded
                    del decoded
        except JournalCorrupt as exc:
            raise JournalDamaged(str(exc), exc.path, exc.offset) from None

    def _explain_batch(self, batch: list[bytes]) -> Exception:
        """The error for a batch that does not decode: the record at fault, and what is wrong."""
        for payload in batch:
            try:
                _record_decoder.decode(payload)
            except msgspec.DecodeError as exc:
                return self._explain(_cmd_id(payload), payload, exc)
        return JournalDamaged(f"a batch of records from cmd_id {_cmd_id(batch[0])} does not decode, "
                              f"though each record does: a bug in replay, report it")

    def _explain(self, cmd_id: int, payload: bytes, exc: Exception) -> Exception:
        segment = self._segment_of(cmd_id)
        try:
            generic = _any_decoder.decode(payload)
        except msgspec.DecodeError:
            generic = None
        if isinstance(generic, list) and len(generic) >= 6:
            command, events = generic[4], generic[5]
            rejection = generic[6] if len(generic) > 6 else None
            unknown = _unknown_tag(command, _COMMAND_TAGS, "command")
            if unknown is None and isinstance(events, list):
                for event in events:
                    unknown = unknown or _unknown_tag(event, _EVENT_TAGS, "event")
            if unknown is None and rejection is not None:
                unknown = _unknown_tag(rejection, _REJECTION_TAGS, "rejection")
            if unknown is not None:
                return JournalTooNew(unknown[1], unknown[0], cmd_id, segment.path if segment else None)
        where = f" in {segment.path}" if segment else ""
        return JournalDamaged(f"record cmd_id {cmd_id}{where} does not decode ({exc}); its crc is valid, so "
                              f"a writer wrote it so: the journal is damaged or not agentperp's",
                              segment.path if segment else None, None, cmd_id)

    def _segment_of(self, cmd_id: int) -> Segment | None:
        found = None
        for segment in self.segments():
            if segment.first_cmd_id <= cmd_id:
                found = segment
        return found


def _run_gatherer(marked: type | None) -> Callable[[PayloadSpans, int, int], tuple]:
    """``gather(spans, first, last)``: a run's first cmd_id, its events' msgpack laid end to
    end, each record's event count, and whether an event of type ``marked`` may be among them
    (msgspec picks an event's type by its tag: without the tag's bytes, no such event)."""
    tag = marked.__struct_config__.tag.encode() if marked is not None else None

    def gather(spans: PayloadSpans, first: int, last: int) -> tuple:
        gathered, counts = spans.msgpack_items(first, last, EVENTS_FIELD)
        return (_cmd_id(spans.payloads(first, first + 1)[0]), gathered, counts,
                tag is None or bytes(gathered).find(tag) >= 0)

    return gather


def _widen(pipe) -> None:
    """Let the kernel's buffer of ``pipe`` hold ``READ_AHEAD_PIPE_BYTES`` (Linux; elsewhere,
    or above the system's pipe-max-size, it stays as it is): with the default 64 KiB a run
    (~100 KiB of events) does not fit, and every run made both processes wait on each other."""
    try:
        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, READ_AHEAD_PIPE_BYTES)
    except (AttributeError, OSError):
        pass


class _Slots:
    """``READ_AHEAD_SLOTS`` slots of ``READ_AHEAD_SLOT_BYTES`` in memory shared by verify and
    its forked reader (anonymous, so nothing outlives them), and a semaphore counting the
    free ones: the reader takes one per run it writes, verify gives it back once decoded."""

    def __init__(self, context) -> None:
        self.memory = mmap.mmap(-1, READ_AHEAD_SLOTS * READ_AHEAD_SLOT_BYTES)  # MAP_SHARED: seen across fork
        self.free = context.Semaphore(READ_AHEAD_SLOTS)
        self._view = memoryview(self.memory)
        self.next = 0  # the reader's next slot (they are taken and given back in turn)

    def view(self, slot: int, size_bytes: int) -> memoryview:
        start = slot * READ_AHEAD_SLOT_BYTES
        return self._view[start:start + size_bytes]

    def write(self, data) -> int:
        """Wait for a free slot, put ``data`` in it, return its number."""
        self.free.acquire()
        slot, self.next = self.next, (self.next + 1) % READ_AHEAD_SLOTS
        start = slot * READ_AHEAD_SLOT_BYTES
        self._view[start:start + len(data)] = data
        return slot

    def unblock(self) -> None:
        for _ in range(READ_AHEAD_SLOTS):
            self.free.release()

    def close(self) -> None:
        self._view.release()
        self.memory.close()


def _read_ahead(journal: ReplayJournal, from_seq: int, marked: type | None, send, receive, slots: _Slots,
                skip_records: int) -> None:
    """The read-ahead process (forked): every run of ``journal.event_runs(from_seq, marked)``
    after its first ``skip_records`` records (the parent's head) read, crc-checked and
    gathered, written into ``slots`` (or sent, if too big) and announced over ``send``; then
    the end mark, unless it met damage (the parent then reads again itself, and says what
    and where)."""
    # The reading end, inherited: open here, it would keep the pipe readable after the parent
    # closed its own (an early stop), and a full pipe would block this process for good.
    receive.close()
    # Ctrl-C is the parent's to handle: it closes the pipe, and this process ends at its next send.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gather = _run_gatherer(marked)
    try:
        rest = _after(journal._reader.read_spans(from_seq), skip_records)
        for _, _, (first_cmd_id, gathered, counts, may_hold_marked) in journal._decoded_batches(rest, gather):
            size_bytes = len(gathered)
            slot = slots.write(gathered) if size_bytes <= READ_AHEAD_SLOT_BYTES else -1
            send.send_bytes(np.array([first_cmd_id, may_hold_marked, slot, size_bytes], np.int64).tobytes()
                            + counts.tobytes())
            if slot < 0:
                send.send_bytes(gathered)
        send.send_bytes(_READ_AHEAD_END)
    except Exception:  # damage, or the parent stopped early (a closed pipe): end without the mark
        pass
    finally:
        send.close()


def _after(chunks: Iterator[PayloadSpans], skipped: int) -> Iterator[PayloadSpans]:
    """The payloads of ``chunks`` after the first ``skipped``."""
    for spans in chunks:
        if skipped >= len(spans):
            skipped -= len(spans)
            continue
        if skipped:
            spans = PayloadSpans(spans.buffer, spans.starts[skipped:], spans.ends[skipped:])
            skipped = 0
        yield spans


def _cmd_id(payload: bytes) -> int:
    try:
        return decode_header(payload).cmd_id
    except msgspec.DecodeError:
        return -1  # the journal reader checked the header already; cannot happen


def _unknown_tag(value, known: frozenset, where: str) -> tuple[str, str] | None:
    if isinstance(value, list) and value and isinstance(value[0], str) and value[0] not in known:
        return where, value[0]
    return None
