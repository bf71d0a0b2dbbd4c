"""``state.closed_rfqs_msgpack`` builds, from the ring of closed RFQs (numpy columns), the
very bytes ``state_hash`` hashed before it (``msgspec.msgpack.encode(sorted(closed_rfqs.items()))``):
checkpoints in existing journals stay valid. Held here through the ring's wrap and a
snapshot's import, with the end states as apply keeps them (``RfqState``) and as a snapshot
brings them back (strings), and for ids of every width msgpack encodes an int in and rings
of every array header's size."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest

from engine.lifecycles import RfqState
from engine.markets import default_config
from engine.state import RECENT_CLOSED_RFQS_MAX, State, closed_rfqs_msgpack, export_state, import_state

ENDS = (RfqState.FILLED, RfqState.CANCELLED, RfqState.EXPIRED)


def _closed(state: State, rfq_ids) -> None:
    for rfq_id in rfq_ids:
        state.remember_closed_rfq(rfq_id, ENDS[rfq_id % 3])


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


@pytest.mark.parametrize("count", [0, 1, 15, 16, 300])
def test_ids_of_every_msgpack_width_and_every_array_header_encode_as_msgspec_does(count):
    """An id is written in the smallest of msgpack's forms (fixint, uint8 / 16 / 32 / 64);
    an array of under 16, under 65 536 or more items has its own header (the full ring's
    65 536 pairs the last: above)."""
    state = State(default_config())
    edges = [1, 127, 128, 255, 256, 65_535, 65_536, 2**32 - 1, 2**32, 2**63 - 1]
    rng = np.random.default_rng(count)
    ids = (edges * (count // len(edges) + 1))[:count]
    ids = [rfq_id + k * 2**20 if rfq_id + k * 2**20 < 2**63 else rfq_id - k for k, rfq_id in enumerate(ids)]
    rng.shuffle(ids)
    _closed(state, ids)
    assert len(state.closed_rfqs) == count
    assert closed_rfqs_msgpack(state) == msgspec.msgpack.encode(sorted(state.closed_rfqs.items()))
