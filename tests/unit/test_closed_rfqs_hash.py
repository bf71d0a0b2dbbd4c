"""``state.closed_rfqs_msgpack`` builds, from the ring of closed RFQs, the very bytes
``state_hash`` hashed before it (``msgspec.msgpack.encode(sorted(closed_rfqs.items()))``):
checkpoints in existing journals stay valid. Held here through the ring's wrap and a
snapshot's import, with the end states as apply keeps them (``RfqState``) and as a snapshot
brings them back (strings)."""

from __future__ import annotations

import msgspec
import numpy as np

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
