"""Each open position's stored safe band (the positions' derived columns ``band_*_e8``,
engine/risk/bands.py) is its ``formulas.safe_band_e8`` after every change of its margins —
an open, funding, a snapshot's import — and the invariants tell a band that reaches too far."""

from __future__ import annotations

import msgspec

from engine import commands as cmd
from engine.invariants import violations
from engine.risk import formulas
from engine.state import OPEN, State, export_state, import_state, state_hash
from engine.units import FUNDING_INTERVAL_NS, NS_PER_S
from tests.support import engine_with_positions

START_NS = 1_767_225_600 * NS_PER_S  # on a funding boundary


def _positions():
    return engine_with_positions(START_NS, [(100, 10), (200, 5), (300, 20)], 5_000_000)


def _stored_and_exact(state: State) -> list[tuple[tuple, tuple]]:
    t, maintenance_bps = state.positions, state.config.markets[0].maintenance_of_initial_bps
    pairs = []
    for row in range(t.high_water):
        if t.status[row] == OPEN:
            exact = formulas.safe_band_e8(*(int(getattr(t, name)[row]) for name in (
                "margin_long_e6", "margin_short_e6", "margin_open_long_e6", "margin_open_short_e6", "size_open_e6",
                "size_e6", "entry_price_e8")), maintenance_bps)
            pairs.append(((float(t.band_low_e8[row]), float(t.band_high_e8[row])), exact))
    return pairs


def test_a_band_is_kept_through_open_funding_and_import():
    state, run = _positions()
    pairs = _stored_and_exact(state)
    assert len(pairs) == 3 and all(stored == exact for stored, exact in pairs)
    assert state.safe_low_e8[0] == max(low for (low, _), _ in pairs)
    # Funding (0.5% per 8h, paid by the long) moves every margin: the bands follow.
    run(cmd.Tick(), START_NS + FUNDING_INTERVAL_NS)
    assert state.funding_boundary_ns == START_NS + FUNDING_INTERVAL_NS
    moved = _stored_and_exact(state)
    assert all(stored == exact for stored, exact in moved) and moved != pairs
    assert not violations(state)
    # A snapshot carries no band (derived) and the hash does not see them; import recomputes.
    restored = import_state(state.config, msgspec.msgpack.decode(msgspec.msgpack.encode(export_state(state))))
    assert _stored_and_exact(restored) == moved and state_hash(restored) == state_hash(state)
    assert (restored.safe_low_e8, restored.safe_high_e8) == (state.safe_low_e8, state.safe_high_e8)


def test_the_invariants_catch_a_band_wider_than_its_position_allows():
    state, _run = _positions()
    row = state.position_row[2]
    state.positions.band_high_e8[row] -= 1.0  # narrower: still safe, only less useful
    assert not violations(state)
    state.positions.band_low_e8[row] -= 1_000.0  # reaches below its exact low: a sweep could skip a liquidation
    assert any("position 2's stored safe band" in found for found in violations(state))


def test_the_invariants_catch_a_position_index_that_does_not_match_its_table():
    """Each way the id -> row index can go wrong is named (a missing, extra, repeated or
    swapped row), and a true index passes."""
    def broken(change) -> list[str]:
        state, _run = _positions()
        assert not violations(state)
        change(state.position_row)
        return violations(state)

    def swap(index):
        index[1], index[2] = index[2], index[1]

    def repeat(index):
        index[1] = index[2]

    def extra(index):
        index[99] = max(index.values()) + 1

    not_live = "the position index does not match the table's live rows"
    assert not_live in broken(lambda index: index.pop(3))
    assert not_live in broken(extra)
    assert not_live in broken(repeat)
    assert "the position index maps an id to another row" in broken(swap)
