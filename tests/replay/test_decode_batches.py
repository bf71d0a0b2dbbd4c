"""Replay's bulk decoding (payload spans of each chunk read, laid end to end by
``PayloadSpans.msgpack_array``, one decoder call per batch) yields exactly the records that
decoding each payload of ``JournalReader.read`` one by one yields, and builds the same state;
so does the events-only path of verify (``event_runs``: the records' events gathered alone,
end to end)."""

from __future__ import annotations

import multiprocessing
import os
from functools import cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import events as ev
from engine.apply import apply
from engine.state import State, state_hash
from ledger.journal import JournalReader
from ledger.records import decode_record
from replay import source
from replay.source import ReplayJournal, decode_command

from .conftest import EVENTS

# 4 KiB chunks take the reference frame scan; 1 MiB ones the numba walk (the whole journal).
CHUNK_BYTES = (4096, 50_000, 1 << 20)


@cache
def one_by_one(journal_dir: str, from_seq: int) -> list:
    return [decode_record(payload) for _, payload in JournalReader(journal_dir).read(from_seq)]


@given(batch_records=st.integers(1, 700), read_chunk_bytes=st.sampled_from(CHUNK_BYTES),
       from_seq=st.one_of(st.just(0), st.integers(1, EVENTS + 5)))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_batches_decode_to_the_records_decoded_one_by_one(session_journal, batch_records, read_chunk_bytes,
                                                          from_seq):
    journal = ReplayJournal(session_journal.data_dir, batch_records=batch_records,
                            read_chunk_bytes=read_chunk_bytes)
    expected = one_by_one(str(journal.directory), from_seq)
    batches = list(journal.event_record_batches(from_seq))
    assert all(0 < len(batch) <= batch_records for batch in batches)
    records = [record for batch in batches for record in batch]
    assert [(r.cmd_id, r.first_seq, r.last_seq, r.ts_ns, r.events) for r in records] == [
        (r.cmd_id, r.first_seq, r.last_seq, r.ts_ns, r.events) for r in expected]
    assert [decode_command(r.command) for r in records] == [r.command for r in expected]
    full = [record for batch in journal.record_batches(from_seq) for record in batch]
    assert full == [r for r in expected if r.cmd_id != 1]  # the genesis record is left out
    runs = list(journal.event_runs(from_seq))
    assert all(0 < len(run.counts) <= batch_records and run.may_hold_marked for run in runs)
    assert [(cmd_id, events) for run in runs for cmd_id, events in run.by_record()] == [
        (r.cmd_id, r.events) for r in expected]


@given(batch_records=st.integers(1, 700), read_chunk_bytes=st.sampled_from(CHUNK_BYTES))
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_batches_build_the_state_the_records_one_by_one_build(session_journal, batch_records, read_chunk_bytes):
    journal = ReplayJournal(session_journal.data_dir, batch_records=batch_records,
                            read_chunk_bytes=read_chunk_bytes)
    config = journal.config()
    batched, reference = State(config), State(config)
    for run in journal.event_runs(0):
        for event in run.events:
            apply(batched, event)
    for record in one_by_one(str(journal.directory), 0):
        for event in record.events:
            apply(reference, event)
    assert batched.last_seq == reference.last_seq == session_journal.live.events
    assert state_hash(batched) == state_hash(reference) == session_journal.live.state_hash


@given(batch_records=st.integers(1, 700), read_chunk_bytes=st.sampled_from(CHUNK_BYTES),
       from_seq=st.one_of(st.just(0), st.integers(1, EVENTS + 5)))
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_event_runs_hold_each_records_events_and_mark_every_checkpoint(session_journal, batch_records,
                                                                       read_chunk_bytes, from_seq):
    """verify's fast pass: each run is the flat events of its records (counted per record),
    and a run holding a checkpoint is never marked free of one (its hash would go unchecked)."""
    journal = ReplayJournal(session_journal.data_dir, batch_records=batch_records,
                            read_chunk_bytes=read_chunk_bytes)
    runs = list(journal.event_runs(from_seq, marked=ev.Checkpoint))
    assert all(0 < len(run.counts) <= batch_records and len(run.events) == sum(run.counts) for run in runs)
    assert [(cmd_id, events) for run in runs for cmd_id, events in run.by_record()] == [
        (r.cmd_id, r.events) for r in one_by_one(str(journal.directory), from_seq)]
    holding = [any(type(e) is ev.Checkpoint for e in run.events) for run in runs]
    assert all(run.may_hold_marked for run, holds in zip(runs, holding) if holds)
    if from_seq == 0:
        # The session's checkpoints (one per 500 events), two of which may share a long run.
        assert sum(type(e) is ev.Checkpoint for run in runs for e in run.events) >= 7
        if batch_records <= 100:  # runs shorter than a checkpoint interval: most hold none, marked so
            assert sum(not run.may_hold_marked for run in runs) >= len(runs) // 2


@given(batch_records=st.integers(1, 700), read_chunk_bytes=st.sampled_from(CHUNK_BYTES),
       head_bytes=st.sampled_from([4096, 65_536, source.READ_AHEAD_HEAD_BYTES, 8 << 20]),
       slots=st.sampled_from([(1, 20_000), (2, 100_000), (source.READ_AHEAD_SLOTS, source.READ_AHEAD_SLOT_BYTES)]),
       from_seq=st.one_of(st.just(0), st.integers(1, EVENTS + 5)))
@settings(max_examples=16, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_event_runs_read_ahead_are_the_runs_read_here(session_journal, batch_records, read_chunk_bytes, head_bytes,
                                                      slots, from_seq):
    """The records read here as the head, then read, crc-checked and gathered by the forked
    read-ahead process (through shared slots, or the pipe for a run too big for one), are
    the records read in this one alone: each once, in order, with the same events, and every
    run holding a checkpoint marked. (Runs end at a chunk's end, and the head is a chunk of
    its own: where runs start may differ.)"""
    def journal() -> ReplayJournal:  # each its own: a reader's seek index moves where its chunks start
        return ReplayJournal(session_journal.data_dir, batch_records=batch_records, read_chunk_bytes=read_chunk_bytes)

    here = list(journal().event_runs(from_seq, marked=ev.Checkpoint))
    kept = source.READ_AHEAD_HEAD_BYTES, source.READ_AHEAD_SLOTS, source.READ_AHEAD_SLOT_BYTES
    # The fork inherits them.
    source.READ_AHEAD_HEAD_BYTES, (source.READ_AHEAD_SLOTS, source.READ_AHEAD_SLOT_BYTES) = head_bytes, slots
    try:
        ahead = list(journal().event_runs(from_seq, marked=ev.Checkpoint, read_ahead=True))
    finally:
        source.READ_AHEAD_HEAD_BYTES, source.READ_AHEAD_SLOTS, source.READ_AHEAD_SLOT_BYTES = kept
    assert [pair for run in ahead for pair in run.by_record()] == [pair for run in here for pair in run.by_record()]
    assert all(run.may_hold_marked for run in ahead if any(type(e) is ev.Checkpoint for e in run.events))
    assert all(0 < len(run.counts) <= batch_records for run in ahead)
    assert here or from_seq > session_journal.live.events  # records were compared, not two empty lists


def test_read_ahead_without_a_working_sem_open_reads_in_this_process(session_journal, monkeypatch):
    """Where POSIX semaphores are missing (no /dev/shm), the slots cannot be counted: the
    runs are read here, the same records, and no reader process is started."""
    def no_sem_open(self, value=1):
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(multiprocessing.context.ForkContext, "Semaphore", no_sem_open)
    journal = ReplayJournal(session_journal.data_dir, batch_records=50)
    ahead = list(journal.event_runs(0, marked=ev.Checkpoint, read_ahead=True))
    assert not multiprocessing.active_children()
    here = list(ReplayJournal(session_journal.data_dir, batch_records=50).event_runs(0, marked=ev.Checkpoint))
    assert ahead == here and here


def test_a_run_read_ahead_dropped_early_stops_its_process(session_journal, monkeypatch):
    # A pipe too small for the journal: the reader is blocked sending when the runs are
    # dropped, and must end at once (its sends fail), not at the kill after the wait.
    monkeypatch.setattr(source, "READ_AHEAD_PIPE_BYTES", 4096)
    monkeypatch.setattr(source, "READ_AHEAD_EXIT_WAIT_S", 60.0)
    journal = ReplayJournal(session_journal.data_dir, batch_records=10)
    runs = journal.event_runs(0, read_ahead=True)
    assert next(runs).first_cmd_id == 1
    reader = multiprocessing.active_children()[0]
    runs.close()  # as verify's loop stopping at a failed checkpoint
    assert not multiprocessing.active_children()
    assert reader.exitcode == 0  # it ended by itself, not killed


def _read_ahead_pays_here(journal_dir, send) -> None:
    send.send(ReplayJournal(journal_dir).read_ahead_pays())


def test_read_ahead_pays_on_a_big_journal_and_never_in_a_daemonic_process(session_journal, monkeypatch):
    journal = ReplayJournal(session_journal.data_dir)
    assert not journal.read_ahead_pays()  # ~1 MB: not worth a fork
    monkeypatch.setattr(source, "READ_AHEAD_BYTES_MIN", 1)
    assert journal.read_ahead_pays() == ((os.cpu_count() or 1) >= 2)
    # A pool's worker is daemonic and may not start a reader: verify there reads in one process.
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    worker = context.Process(target=_read_ahead_pays_here, args=(session_journal.data_dir, send), daemon=True)
    worker.start()
    assert receive.recv() is False
    worker.join()
