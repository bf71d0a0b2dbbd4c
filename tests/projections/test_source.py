"""The projection runner's reader: consecutive batches continue one read of the journal.
Whatever the batch sizes, the tail's moves, rejected commands (records without events) and
jumps back (a rebuild), a follower sees every seq once, in order, each batch whole records
within its bounds — checked against the list of seqs written (the model)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from engine import commands as cmd
from ledger.projections.source import JournalSource
from tests.projections.support import E6, T0_NS, JournalWriter

steps = st.lists(st.one_of(
    st.tuples(st.just("write"), st.integers(1, 12), st.booleans()),  # commands; with a rejected one
    st.tuples(st.just("read"), st.integers(1, 9), st.integers(0, 3)),  # events_max; to_seq short of the tail by
    st.tuples(st.just("rebuild"), st.integers(0, 40), st.just(0)),  # back to an earlier checkpoint
), min_size=1, max_size=40)


@settings(max_examples=40, deadline=None)
@given(steps)
def test_batches_follow_the_journal_once_in_order(script):
    with tempfile.TemporaryDirectory() as directory:
        writer = JournalWriter(Path(directory))
        source = JournalSource(Path(directory) / "journal")
        written = 0  # the model: seqs 1..written are on disk
        checkpoint = 0
        for kind, a, b in script:
            if kind == "write":
                for i in range(a):
                    writer(T0_NS + writer.cmd_id, cmd.Deposit(f"agent{i % 3}", E6, f"ref{writer.cmd_id}"))
                    written += 1  # a deposit: one event
                if b:  # more than anyone holds: a rejection, a record without events
                    writer(T0_NS + writer.cmd_id, cmd.Withdraw("agent0", 10**15, "away"))
            elif kind == "rebuild":
                checkpoint = min(a, checkpoint)
            else:
                to_seq = max(checkpoint, written - b)
                records = source.read_batch(checkpoint + 1, to_seq, a) if to_seq > checkpoint else []
                if to_seq <= checkpoint:
                    continue
                assert records, (checkpoint, to_seq)
                seqs = [e.seq for r in records for e in r.events]
                assert all(r.events for r in records)
                assert seqs[0] <= checkpoint + 1 <= seqs[-1] <= to_seq
                assert seqs == list(range(seqs[0], seqs[-1] + 1))
                new = [s for s in seqs if s > checkpoint]
                assert len(new) <= a  # deposits are one event a record: a batch stops at events_max
                assert len(new) == a or seqs[-1] == to_seq
                checkpoint = seqs[-1]
        writer.close()
