"""``apply(FundingSettled)`` finds each position's row by its id, whatever the order of the
event's lists (the fast path assumes the settlement kernel's row order; any other order
takes the id index)."""

from __future__ import annotations

from engine import events as ev
from engine.apply import apply
from engine.state import State
from engine.units import FUNDING_INTERVAL_NS, NS_PER_S
from tests.support import engine_with_positions

START_NS = 1_767_225_600 * NS_PER_S  # 2026-01-01 00:00 UTC, on a boundary


def _three_positions() -> State:
    return engine_with_positions(START_NS, [(100, 10), (200, 10), (300, 10)], 1_000_000)[0]


def test_funding_lists_in_any_order_reach_the_same_rows():
    in_row_order, shuffled = _three_positions(), _three_positions()
    ids = sorted(in_row_order.position_row, key=in_row_order.position_row.get)
    amounts = [1_000 * (i + 1) for i in range(len(ids))]
    boundary_ns = START_NS + FUNDING_INTERVAL_NS
    for state, order in ((in_row_order, ids), (shuffled, ids[::-1])):
        apply(state, ev.FundingSettled(state.last_seq + 1, boundary_ns, 99, boundary_ns=boundary_ns,
                                       position_ids=order, long_to_short_e6=[amounts[ids.index(p)] for p in order],
                                       shortfall_e6=0))
    for position_id in ids:
        a, b = in_row_order.position_row[position_id], shuffled.position_row[position_id]
        assert in_row_order.positions.margin_long_e6[a] == shuffled.positions.margin_long_e6[b]
        assert in_row_order.positions.margin_short_e6[a] == shuffled.positions.margin_short_e6[b]
    assert [int(x) for x in shuffled.positions.last_funding_ns[:3]] == [boundary_ns] * 3
