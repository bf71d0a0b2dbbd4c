"""``check(state)``: every invariant of DESIGN §4, money first, then structure.

Property and simulation tests call it after every command; ops tools after a replay.
"""

from __future__ import annotations

import numpy as np

from engine.state import FREE_ROW, LIVE, OPEN, State


class InvariantViolation(AssertionError):
    pass


def violations(state: State) -> list[str]:
    """Every invariant that does not hold, as readable sentences (empty: all hold)."""
    found: list[str] = []
    found += _money(state)
    found += _holds(state)
    found += _structure(state)
    return found


def check(state: State) -> None:
    """Raise ``InvariantViolation`` listing what does not hold."""
    found = violations(state)
    if found:
        raise InvariantViolation(f"after seq {state.last_seq}: " + "; ".join(found))


def _money(state: State) -> list[str]:
    found = []
    a, p = state.agents, state.positions
    free, held = a.column("free_e6"), a.column("held_e6")
    m_long, m_short = p.column("margin_long_e6"), p.column("margin_short_e6")
    total = (int(free.sum()) + int(held.sum()) + int(m_long.sum()) + int(m_short.sum()) + state.fees_e6
             + state.insurance_e6 + state.external_e6)
    if total != 0:
        found.append(f"accounts sum to {total}, not 0")
    for name, column in (("free", free), ("held", held), ("margin_long", m_long), ("margin_short", m_short)):
        if len(column) and int(column.min()) < 0:
            found.append(f"a {name} account is negative ({int(column.min())})")
    for name in ("fees_e6", "insurance_e6", "bad_debt_e6"):
        if getattr(state, name) < 0:
            found.append(f"{name} is negative ({getattr(state, name)})")
    if -state.external_e6 != state.deposited_e6 - state.withdrawn_e6:
        found.append(f"-external {-state.external_e6} != deposits - withdrawals "
                     f"{state.deposited_e6 - state.withdrawn_e6}")
    not_open = p.column("status") != OPEN
    if np.any(m_long[not_open] != 0) or np.any(m_short[not_open] != 0):
        found.append("a margin belongs to no open position")
    return found


def _holds(state: State) -> list[str]:
    """Each agent's ``held`` equals what its open RFQs and live quotes require."""
    a, r, q = state.agents, state.rfqs, state.quotes
    required = np.zeros(a.high_water, np.int64)
    live_rfqs = r.column("status") == LIVE
    np.add.at(required, r.column("trader")[live_rfqs],
              r.column("margin_e6")[live_rfqs] + r.column("fee_e6")[live_rfqs])
    live_quotes = q.column("status") == LIVE
    np.add.at(required, q.column("maker")[live_quotes],
              q.column("collateral_e6")[live_quotes] + q.column("fee_e6")[live_quotes])
    wrong = np.flatnonzero(required != a.column("held_e6"))
    return [f"agent {state.agent_keys[i]} holds {int(a.held_e6[i])} but its RFQs and quotes need "
            f"{int(required[i])}" for i in wrong[:5]]


def _index_matches(name: str, index: dict[int, int], table, id_column: str) -> list[str]:
    status = table.column("status")
    live_rows = set(np.flatnonzero(status != FREE_ROW).tolist())
    if set(index.values()) != live_rows or len(index) != table.live:
        return [f"the {name} index does not match the table's live rows"]
    ids = getattr(table, id_column)
    if any(int(ids[row]) != key for key, row in index.items()):
        return [f"the {name} index maps an id to another row"]
    if len(live_rows) + len(table.free_rows) != table.high_water:
        return [f"the {name} table has rows neither live nor free"]
    return []


def _structure(state: State) -> list[str]:
    found = []
    found += _index_matches("rfq", state.rfq_row, state.rfqs, "rfq_id")
    found += _index_matches("quote", state.quote_row, state.quotes, "quote_id")
    found += _index_matches("position", state.position_row, state.positions, "position_id")
    if any(state.agent_row[key] != row for row, key in enumerate(state.agent_keys)):
        found.append("agent keys and rows disagree")
    if set(state.rfq_quotes) != set(state.rfq_row):
        found.append("rfq_quotes does not cover exactly the open RFQs")
    q = state.quotes
    for rfq_id, makers in state.rfq_quotes.items():
        for maker, quote_id in makers.items():
            row = state.quote_row.get(quote_id)
            if row is None or int(q.rfq_id[row]) != rfq_id or int(q.maker[row]) != maker:
                found.append(f"rfq_quotes[{rfq_id}] lists quote {quote_id} wrongly")
    if sum(len(m) for m in state.rfq_quotes.values()) != len(state.quote_row):
        found.append("a live quote belongs to no open RFQ")
    p = state.positions
    open_rows = p.column("status") == OPEN
    size, size_open = p.column("size_e6")[open_rows], p.column("size_open_e6")[open_rows]
    if np.any(size <= 0) or np.any(size > size_open) or np.any(p.column("entry_price_e8")[open_rows] <= 0):
        found.append("an open position has a size or entry price out of range")
    for position_id, since_ns in state.flagged.items():
        row = state.position_row.get(position_id)
        if row is None or int(p.flagged_ns[row]) != since_ns:
            found.append(f"flagged position {position_id} is not open or its flag time differs")
    if int(np.count_nonzero(p.column("expires_ns")[open_rows])) != state.fixed_duration_open:
        found.append("the count of open fixed-duration positions is wrong")
    if int(np.count_nonzero(p.column("flagged_ns")[open_rows])) != len(state.flagged):
        found.append("flag times and the flagged index disagree")
    for ids, next_id, name in ((state.rfq_row, state.next_rfq_id, "rfq"), (state.quote_row, state.next_quote_id, "quote"),
                               (state.position_row, state.next_position_id, "position")):
        if ids and max(ids) >= next_id:
            found.append(f"a {name} id is not below the next {name} id")
    return found
