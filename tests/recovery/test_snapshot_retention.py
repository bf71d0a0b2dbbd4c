"""Snapshot retention: the newest for recovery, and older ones spread over the journal for
replay's stretches (``ledger.snapshots.prune``)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import snapshots


def _touch(directory, seq: int) -> None:
    snapshots.snapshot_path(directory, seq).write_bytes(b"")  # prune reads names only


def _seqs(directory) -> list[int]:
    return sorted(int(path.stem) for path in snapshots.list_snapshots(directory))


@settings(max_examples=60, deadline=None)
@given(intervals=st.lists(st.integers(50, 150), min_size=1, max_size=300), keep=st.integers(1, 4),
       spread=st.integers(1, 10))
def test_prune_keeps_the_newest_and_spreads_the_rest(tmp_path_factory, intervals, keep, spread):
    directory = tmp_path_factory.mktemp("snapshots")
    seq = 0
    written = []
    for interval in intervals:
        seq += interval
        _touch(directory, seq)
        written.append(seq)
        deleted = snapshots.prune(directory, keep, spread)
        kept = _seqs(directory)
        assert len(kept) == min(len(written), keep + spread)  # the bound, and nothing deleted below it
        assert kept[-keep:] == written[-keep:]  # the newest, whole
        assert set(kept) | {int(path.stem) for path in deleted} <= set(written)
    # Spread: no gap between the kept older ones (from seq 0 to the oldest of the newest)
    # wider than twice an even share, give or take one interval between snapshots.
    if len(written) > keep + spread:
        kept = _seqs(directory)
        older, bound = kept[:-keep], kept[-keep]
        edges = [0] + older + [bound]
        widest = max(b - a for a, b in zip(edges, edges[1:]))
        assert widest <= 2 * bound / (len(older) + 1) + max(intervals)


def test_prune_deletes_nothing_within_the_bound(tmp_path):
    for seq in range(100, 100 * (snapshots.KEEP_DEFAULT + snapshots.SPREAD_KEEP_DEFAULT) + 1, 100):
        _touch(tmp_path, seq)
    assert snapshots.prune(tmp_path) == []
    _touch(tmp_path, 10_000)
    assert len(snapshots.prune(tmp_path)) == 1


def test_prune_always_keeps_the_newest(tmp_path):
    _touch(tmp_path, 100)
    with pytest.raises(ValueError, match="keeps at least the newest"):
        snapshots.prune(tmp_path, keep=0)
    assert _seqs(tmp_path) == [100]
