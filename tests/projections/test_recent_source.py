"""The live projections' in-memory feed (``RecentRecords`` / ``RecentSource``): the records it
serves are the ones the journal holds, equal field for field, and whatever the window does
not hold whole comes from the journal.

The journal and the records in memory are written by a real venue (sequencer, group commits,
its own Ticks and rejections) running a seeded ``replay.generate`` session, with the SQL read
model live on the in-process runner; the properties then append those records, in batches
of random sizes, to windows of random bounds and compare batches of random bounds with
``JournalSource``'s.
"""

from __future__ import annotations

import asyncio

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import commands as cmd
from ledger.journal import JournalReader
from ledger.projections.source import (BATCH_EVENTS_DEFAULT, BATCH_EVENTS_MAX, RECENT_COMPACT_RECORDS,
                                       RECENT_EVENTS_MAX, JournalSource, RecentRecords, RecentSource)
from ledger.records import decode_record
from replay.generate import START_NS
from tests.projections.support import bare_venue_config, submit_session
from tests.support import FakeClock

encoder = msgspec.msgpack.Encoder()

ROUNDS = 300  # session rounds: ~2 500 events, far below RECENT_EVENTS_MAX (the venue's window keeps all)


async def _run_venue(data_dir) -> tuple[list, int, dict[str, int]]:
    """The records the venue's window holds at the end (all of them), its last seq, and the
    SQL projection's batch counts by origin."""
    from venue.app import Venue

    config = bare_venue_config(data_dir, sql_process="off")  # on the venue's runner: fed by the window
    clock = FakeClock(START_NS)
    venue = Venue(config, clock=clock)
    await venue.start(serve=False)
    async def rejection(round_: int, pending: list) -> None:
        if round_ % 10 == 0:  # more than anyone holds: a rejection, journaled without events
            pending.append(cmd.Withdraw("trader000", 10**18, "away"))

    try:
        await submit_session(venue, clock, ROUNDS, rejection)
        last_seq = venue.hub.last_seq
        await venue.projections.runner.wait_for_seq("sql", last_seq)
        [sql] = venue.projections.summary()  # what /health shows
        held = venue.projections.recent.read(1, last_seq, BATCH_EVENTS_MAX)  # the whole window
        assert held is not None
        counts = {"memory": sql["batches_from_memory"], "journal": sql["batches_from_journal"]}
    finally:
        await venue.stop()
    return held, last_seq, counts


@pytest.fixture(scope="module")
def venue_run(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("recent") / "data"
    held, last_seq, counts = asyncio.run(_run_venue(data_dir))
    return data_dir / "journal", held, last_seq, counts


def test_the_venue_window_holds_the_journal_and_feeds_the_live_projection(venue_run):
    """Every durable record with events reached the window, equal to the one decoded from
    the journal (genesis and rejections are journaled but hold no seq: not kept); the live
    SQL projection read its batches from memory."""
    journal_dir, in_memory, last_seq, counts = venue_run
    payloads = [payload for _, payload in JournalReader(journal_dir).read(from_seq=0)]
    decoded = [decode_record(payload) for payload in payloads]
    assert decoded[0].cmd_id == 1 and not decoded[0].events  # the genesis
    assert any(r.rejection is not None for r in decoded)  # the session's commands include rejections
    with_events = [r for r in decoded if r.events]
    assert in_memory == with_events
    # Byte for byte too (what a re-encoding sink, the JetStream publisher, sends): no field
    # holds a value that is equal but of another type (True for 1, a tuple for a list).
    assert [encoder.encode(r) for r in in_memory] == [p for p, r in zip(payloads, decoded) if r.events]
    assert in_memory[-1].last_seq == last_seq > 2_000
    assert {type(e).__name__ for r in in_memory for e in r.events} >= {
        "Deposited", "OracleUpdated", "PositionOpened", "PositionClosed", "FundingSettled"}
    assert counts["memory"] > 0 and counts["journal"] <= 1  # at most the first (empty-window) read


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_batches_from_memory_equal_the_journals_and_fall_back_when_trimmed(venue_run, data):
    journal_dir, records, last_seq, _ = venue_run
    window = RecentRecords(events_max=data.draw(st.integers(1, last_seq + 10), label="events_max"))
    first = data.draw(st.integers(0, len(records) - 1), label="first")  # a venue (re)started here
    end = data.draw(st.integers(first + 1, len(records)), label="end")
    cuts = sorted(data.draw(st.lists(st.integers(first + 1, end), max_size=8, unique=True), label="cuts"))
    for a, b in zip([first, *cuts], [*cuts, end]):  # durable batches of any size
        window.append(records[a:b])
    held = records[first:end]
    window_end = held[-1].last_seq
    kept, events = [], 0  # the model of the window: the newest whole records within events_max
    for record in reversed(held):
        events += len(record.events)
        if events > window.events_max:
            break
        kept.insert(0, record)
    source = RecentSource(window, JournalSource(journal_dir))
    journal = JournalSource(journal_dir)
    for _ in range(data.draw(st.integers(1, 4), label="reads")):
        edges = [kept[0].first_seq, window_end] if kept else [window_end]  # where off-by-ones hide
        near = st.sampled_from(edges).flatmap(lambda seq: st.integers(seq - 2, seq + 2))
        from_seq = min(last_seq, max(1, data.draw(st.one_of(st.integers(1, last_seq), near), label="from_seq")))
        to_seq = min(last_seq, max(from_seq, data.draw(st.one_of(st.integers(from_seq, last_seq), near),
                                                       label="to_seq")))
        events_max = data.draw(st.sampled_from([1, 2, 7, 50, 5_000, BATCH_EVENTS_MAX]), label="events_max")
        before = source.batches_from_memory
        got = source.read_batch(from_seq, to_seq, events_max)
        expected = journal.read_batch(from_seq, to_seq, events_max)
        assert got == expected
        assert all(r.events for r in got) and got[0].first_seq <= from_seq <= got[0].last_seq
        from_memory = source.batches_from_memory > before
        holds = bool(kept) and kept[0].first_seq <= from_seq and expected[-1].last_seq <= window_end
        assert from_memory == holds, (from_seq, to_seq, events_max, kept[0].first_seq if kept else None)
        if from_memory:
            assert all(a is b for a, b in zip(got, [r for r in kept if r.last_seq >= from_seq]))


def test_a_window_drops_its_oldest_records_beyond_its_bound(venue_run):
    """RECENT_EVENTS_MAX bounds the window: whole records, the oldest dropped first; a read
    from a dropped seq goes to the journal and still sees every event."""
    journal_dir, records, last_seq, _ = venue_run
    assert RECENT_EVENTS_MAX >= 3 * BATCH_EVENTS_DEFAULT  # a live projection a batch or two behind
    window = RecentRecords(events_max=100)
    for start in range(0, len(records), 7):
        window.append(records[start:start + 7])
        # What it let go is freed RECENT_COMPACT_RECORDS at a time, never more held.
        assert window._start < RECENT_COMPACT_RECORDS
    assert 100 - max(len(r.events) for r in records) < window._events <= 100
    source = RecentSource(window, JournalSource(journal_dir))
    seqs, checkpoint = [], 0
    while checkpoint < last_seq:
        records = source.read_batch(checkpoint + 1, last_seq, 37)
        seqs += [e.seq for r in records for e in r.events if e.seq > checkpoint]
        checkpoint = records[-1].last_seq
    assert seqs == list(range(1, last_seq + 1))  # no event skipped, none twice
    assert source.batches_from_journal > 0 and source.batches_from_memory > 0
    with pytest.raises(ValueError):
        RecentRecords(events_max=0)


def test_a_hole_in_the_appends_empties_the_window(venue_run):
    """Records that do not continue the window (never expected from the venue) start it
    afresh: a batch across the hole would miss events, so it comes from the journal."""
    journal_dir, records, _, _ = venue_run
    window = RecentRecords()
    window.append(records[:10])
    window.append(records[20:30])  # records 10..19 never arrived
    source = RecentSource(window, JournalSource(journal_dir))
    end_seq = records[29].last_seq
    assert source.read_batch(1, end_seq, 5_000) == JournalSource(journal_dir).read_batch(1, end_seq, 5_000)
    assert (source.batches_from_memory, source.batches_from_journal) == (0, 1)
    assert source.read_batch(records[20].first_seq, end_seq, 5_000) == records[20:30]
    assert source.batches_from_memory == 1
