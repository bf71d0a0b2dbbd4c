"""Small files replaced whole: durably (the file and its directory fsynced) or atomically only
(no fsync: for files whose loss costs nothing, e.g. an in-process chain's settlement checkpoint,
written once at close)."""

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


def test_the_settlement_checkpoint_of_an_in_process_chain_stays_in_memory_until_close(tmp_path, fsyncs):
    durable = CheckpointStore(tmp_path / "rpc.json")
    durable.save(Checkpoint("rpc:x", 42))
    assert durable.load().seq == 42 and len(fsyncs) == 2  # on disk at each save: file and directory

    fsyncs.clear()
    in_memory = CheckpointStore(tmp_path / "litesvm.json", durable=False)
    for seq in (1, 7, 42):
        in_memory.save(Checkpoint("litesvm:x", seq))
    assert not in_memory.path.exists()  # no file written per settled batch
    assert in_memory.load() == Checkpoint("litesvm:x", 42)  # read back from memory (a projection's retry)
    in_memory.close()
    assert in_memory.load() == Checkpoint("litesvm:x", 42) and fsyncs == []  # the last one, at close, unfsynced
    in_memory.close()  # nothing left to write
    assert in_memory.load().seq == 42
