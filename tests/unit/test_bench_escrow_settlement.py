"""The settlement benchmark's load and runs (not their times): the seeded load is the same
every time, every batch of it settles on both backends with nothing unmirrored, and a lag
run sees every batch confirmed."""

from __future__ import annotations

import pytest

from benchmarks import escrow_settlement as bench
from programs.escrow.build import build


@pytest.fixture(scope="module")
def load():
    return bench.make_load(30)


def test_the_load_is_seeded_and_holds_opens_closes_and_funding(load):
    again = bench.make_load(30)
    assert [b.records for b in again.batches] == [b.records for b in load.batches]
    assert all(b.settled_events >= 1 for b in load.batches)  # an open in every batch
    boundary = bench.BATCHES_PER_FUNDING  # the batch whose tick crosses 08:00
    assert load.batches[boundary].settled_events > load.batches[boundary - 1].settled_events
    assert [b.last_seq for b in load.batches] == sorted({b.last_seq for b in load.batches})


@pytest.mark.parametrize("kind", bench.BACKENDS)
def test_every_batch_settles_on_both_backends(load, kind, tmp_path):
    # settled_events_per_s asserts the projection reached the last batch with nothing unmirrored
    # (and halts on any program error): a rate > 0 means all of it settled.
    assert bench.settled_events_per_s(kind, build(), load, tmp_path, len(load.batches)) > 0


@pytest.mark.parametrize("kind", ["litesvm", None])
def test_a_lag_run_confirms_every_batch(load, kind, tmp_path):
    run = bench.lag_run(kind, build(), load, tmp_path, batches_per_s=1_000.0, seconds=0.01 * len(load.batches))
    assert len(run.lag_seq) == len(run.lag_s) >= 1
    assert all(lag >= 0 for lag in run.lag_s) and all(seq >= 0 for seq in run.lag_seq)
