"""Small files replaced whole: durably (the file and its directory fsynced) or atomically only
(no fsync: for files whose loss costs nothing, e.g. an in-process chain's settlement checkpoint)."""

from __future__ import annotations

import os

import pytest

from adapters.solana.checkpoint import Checkpoint, CheckpointStore
from ledger.files import replace_atomically, replace_durably


@pytest.fixture
def fsyncs(monkeypatch) -> list[int]:
    """The descriptors os.fsync is called with (the call itself still made)."""
    calls: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    return calls


@pytest.mark.parametrize("replace, fsyncs_expected", [(replace_durably, 2), (replace_atomically, 0)])
def test_a_file_is_replaced_whole_with_or_without_fsync(tmp_path, fsyncs, replace, fsyncs_expected):
    path = tmp_path / "dir" / "state.json"
    replace(path, b"old")
    replace(path, b"new contents")
    assert path.read_bytes() == b"new contents"
    assert sorted(p.name for p in path.parent.iterdir()) == ["state.json"]  # no temporary file left
    assert len(fsyncs) == 2 * fsyncs_expected


def test_the_settlement_checkpoint_of_an_in_process_chain_is_not_fsynced(tmp_path, fsyncs):
    for durable, expected in ((True, 2), (False, 0)):
        fsyncs.clear()
        store = CheckpointStore(tmp_path / f"cp-{durable}.json", durable=durable)
        store.save(Checkpoint("litesvm:x", 42))
        assert store.load().seq == 42 and len(fsyncs) == expected
