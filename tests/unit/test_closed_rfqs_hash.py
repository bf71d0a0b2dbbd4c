"""``state.closed_rfqs_msgpack`` builds, with numpy from the ring of closed RFQs, the very
bytes ``state_hash`` hashed before it (``msgspec.msgpack.encode(sorted(closed_rfqs.items()))``):
checkpoints in existing journals stay valid. Held here over every msgpack int form and
array header, and over the ring's wrap and a snapshot's import."""

from __future__ import annotations

import msgspec
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.markets import default_config
from engine.state import (RECENT_CLOSED_RFQS_MAX, RFQ_ENDS, State, closed_rfqs_msgpack, export_state, import_state,
                          msgpack_pairs)

# Every msgpack form of a positive int, at and around its edges.
EDGES = [0, 1, 127, 128, 255, 256, 65_535, 65_536, 2**32 - 1, 2**32, 2**63 - 1]
keys = st.sampled_from(EDGES) | st.integers(0, 2**63 - 1) | st.integers(1, 300_000)


@settings(max_examples=300, deadline=None)
@given(pairs=st.lists(st.tuples(keys, st.integers(0, len(RFQ_ENDS) - 1)), max_size=40))
def test_pairs_are_msgspecs_bytes(pairs):
    got = msgpack_pairs(np.array([k for k, _ in pairs], np.int64), np.array([c for _, c in pairs], np.int8),
                        RFQ_ENDS)
    assert got == msgspec.msgpack.encode([[k, RFQ_ENDS[c]] for k, c in pairs])


def test_array_headers_at_their_edges():
    for n in (0, 15, 16, 65_535, 65_536):
        ids = np.arange(1, n + 1, dtype=np.int64)
        codes = (ids % len(RFQ_ENDS)).astype(np.int8)
        assert msgpack_pairs(ids, codes, RFQ_ENDS) == msgspec.msgpack.encode(
            [[int(i), RFQ_ENDS[c]] for i, c in zip(ids, codes)])


def _closed(state: State, rfq_ids) -> None:
    for rfq_id in rfq_ids:
        state.remember_closed_rfq(rfq_id, RFQ_ENDS[rfq_id % 3])


def test_the_ring_hashes_as_the_dict_through_its_wrap_and_an_import():
    state = State(default_config())
    rng = np.random.default_rng(7)
    # Closed out of id order (as RFQs end: shuffled within blocks of 100), past the bound.
    total = RECENT_CLOSED_RFQS_MAX + 5_064  # a whole number of blocks
    ids = np.arange(1, total + 1).reshape(-1, 100)
    ids = rng.permuted(ids, axis=1).ravel().tolist()
    done = 0
    for taken in (10, RECENT_CLOSED_RFQS_MAX - 1, RECENT_CLOSED_RFQS_MAX, total):
        _closed(state, ids[done:taken])
        done = taken
        assert len(state.closed_rfqs) == min(taken, RECENT_CLOSED_RFQS_MAX)
        assert closed_rfqs_msgpack(state) == msgspec.msgpack.encode(sorted(state.closed_rfqs.items()))
    restored = import_state(state.config, msgspec.msgpack.decode(msgspec.msgpack.encode(export_state(state))))
    assert closed_rfqs_msgpack(restored) == closed_rfqs_msgpack(state)
    _closed(restored, [10**9, 10**9 + 1])  # the restored ring goes on forgetting the oldest
    _closed(state, [10**9, 10**9 + 1])
    assert closed_rfqs_msgpack(restored) == closed_rfqs_msgpack(state) == msgspec.msgpack.encode(
        sorted(state.closed_rfqs.items()))
