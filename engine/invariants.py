"""``check(state)``: every invariant of DESIGN §4, money first, then structure.

Property and simulation tests call it after every command; ops tools after a replay.
"""

from __future__ import annotations

import numpy as np

from engine.kernels.sweep_nb import band_of_rows_nb
from engine.risk import bands
from engine.state import FREE_ROW, OPEN, State
from engine.units import PRICE_E8_MAX, TWAP_WINDOW_NS_MAX, TWAP_WINDOW_NS_MIN


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
    a = state.agents
    required = [0] * a.high_water
    for rfq in state.rfqs.values():
        required[state.agent_row[rfq.trader]] += rfq.margin_e6 + rfq.fee_e6
    for quote in state.quotes.values():
        required[state.agent_row[quote.maker]] += quote.collateral_e6 + quote.fee_e6
    held = a.column("held_e6").tolist()
    wrong = [i for i in range(a.high_water) if required[i] != held[i]]
    return [f"agent {state.agent_keys[i]} holds {held[i]} but its RFQs and quotes need {required[i]}"
            for i in wrong[:5]]


def _index_matches(name: str, index: dict[int, int], table, id_column: str) -> list[str]:
    live_rows = np.flatnonzero(table.column("status") != FREE_ROW)  # increasing
    keys = np.fromiter(index.keys(), np.int64, len(index))
    rows = np.fromiter(index.values(), np.int64, len(index))
    # Compared as arrays (the dicts' walk in Python was most of a checkpoint's checks): sorted,
    # the index's rows are the live rows exactly when no row is missing, extra or repeated.
    if len(index) != table.live or not np.array_equal(np.sort(rows), live_rows):
        return [f"the {name} index does not match the table's live rows"]
    if not np.array_equal(table.column(id_column)[rows], keys):
        return [f"the {name} index maps an id to another row"]
    if len(live_rows) + len(table.free_rows) != table.high_water:
        return [f"the {name} table has rows neither live nor free"]
    return []


def _rfqs_and_quotes(state: State) -> list[str]:
    """Each live quote is its RFQ's quote from its maker, and both dicts, and each RFQ's
    quotes, are in id order (ids only grow, and a replaced quote leaves its RFQ before its
    successor comes; the tick phases and a fill's released quotes rely on the order)."""
    found = []
    if any(rfq.rfq_id != rfq_id for rfq_id, rfq in state.rfqs.items()):
        found.append("an RFQ is filed under another id")
    for quote_id, quote in state.quotes.items():
        rfq = state.rfqs.get(quote.rfq_id)
        if quote.quote_id != quote_id or rfq is None or rfq.quotes.get(quote.maker) is not quote:
            found.append(f"live quote {quote_id} is not its RFQ's quote from its maker")
    if sum(len(rfq.quotes) for rfq in state.rfqs.values()) != len(state.quotes):
        found.append("an RFQ lists a quote that is not live")
    for name, ids in (("rfq", list(state.rfqs)), ("quote", list(state.quotes))):
        if ids != sorted(ids):
            found.append(f"the {name}s are not in id order")
    for rfq in state.rfqs.values():
        ids = [quote.quote_id for quote in rfq.quotes.values()]
        if ids != sorted(ids):
            found.append(f"RFQ {rfq.rfq_id}'s quotes are not in id order")
    return found


def _safe_bands(state: State) -> list[str]:
    """Each position's stored band (the derived columns ``band_*_e8``) and each market's
    band lie within the exact bands of the open positions, computed afresh."""
    t = state.positions
    found = []
    n = t.high_water
    exact_low, exact_high = np.empty(n), np.empty(n)
    bands.compute_position_bands(state, exact_low, exact_high)
    stored_low, stored_high = t.column("band_low_e8"), t.column("band_high_e8")
    open_rows = t.column("status") == OPEN
    # A stored band that is empty, or inside the exact one, is safe; one reaching beyond is not.
    wide = open_rows & (stored_low < stored_high) & ((stored_low < exact_low) | (stored_high > exact_high))
    for row in np.flatnonzero(wide)[:3].tolist():
        found.append(f"position {int(t.position_id[row])}'s stored safe band ({stored_low[row]}, {stored_high[row]}) "
                     f"reaches beyond its exact one ({exact_low[row]}, {exact_high[row]})")
    for market in range(len(state.config.markets)):
        low, high = state.safe_low_e8[market], state.safe_high_e8[market]
        if not low < high:
            continue  # empty: every price sweeps
        market_low, market_high = band_of_rows_nb(t.status, t.market, exact_low, exact_high, n, market)
        if low < market_low or high > market_high:
            found.append(f"the safe band of market {market} ({low}, {high}) reaches beyond its positions' "
                         f"({market_low}, {market_high})")
    return found


def _oracle(state: State) -> list[str]:
    """Per market: no price, no publish time and no TWAP together; else price and TWAP in
    bounds (the TWAP lies between prices the engine accepted) over a window within bounds."""
    o = state.oracle
    found = []
    for market, m in enumerate(state.config.markets):
        price_e8, publish_ns, twap_e8 = o.price_e8[market], o.publish_ns[market], o.twap_e8[market]
        if publish_ns == 0:
            if price_e8 != 0 or twap_e8 != 0:
                found.append(f"market {market} has a price or TWAP but no publish time")
        elif not (1 <= price_e8 <= PRICE_E8_MAX and 1 <= twap_e8 <= PRICE_E8_MAX):
            found.append(f"market {market}: price {price_e8} or TWAP {twap_e8} outside [1, {PRICE_E8_MAX}]")
        if not TWAP_WINDOW_NS_MIN <= m.oracle_twap_window_ns <= TWAP_WINDOW_NS_MAX:
            found.append(f"market {market}: TWAP window {m.oracle_twap_window_ns} ns outside its bounds")
    return found


def _structure(state: State) -> list[str]:
    found = []
    found += _index_matches("position", state.position_row, state.positions, "position_id")
    if any(state.agent_row[key] != row for row, key in enumerate(state.agent_keys)):
        found.append("agent keys and rows disagree")
    found += _rfqs_and_quotes(state)
    found += _safe_bands(state)
    found += _oracle(state)
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
    if np.any(p.column("opened_ns")[open_rows] < state.opened_ns_low):
        found.append("a position opened before opened_ns_low")
    if int(np.count_nonzero(p.column("flagged_ns")[open_rows])) != len(state.flagged):
        found.append("flag times and the flagged index disagree")
    found += _limits(state)
    for ids, next_id, name in ((state.rfqs, state.next_rfq_id, "rfq"), (state.quotes, state.next_quote_id, "quote"),
                               (state.position_row, state.next_position_id, "position")):
        if ids and max(ids) >= next_id:
            found.append(f"a {name} id is not below the next {name} id")
    return found


def _limits(state: State) -> list[str]:
    """The derived counts behind the limits are right, and no limit is passed."""
    found = []
    rfqs_of: dict[str, int] = {}
    for rfq in state.rfqs.values():
        rfqs_of[rfq.trader] = rfqs_of.get(rfq.trader, 0) + 1
    quotes_of: dict[str, int] = {}
    for quote in state.quotes.values():
        quotes_of[quote.maker] = quotes_of.get(quote.maker, 0) + 1
    if rfqs_of != state.open_rfqs_of:
        found.append("the per-agent count of open RFQs is wrong")
    if quotes_of != state.live_quotes_of:
        found.append("the per-agent count of live quotes is wrong")
    if [(ts_ns, seq, key) for key, (seq, ts_ns) in state.client_ids.items()] != list(state.client_id_order):
        found.append("the client_id window order does not list the remembered client_ids in order")
    c = state.config
    for name, count, limit in (("open RFQs of an agent", max(rfqs_of.values(), default=0), c.open_rfqs_per_agent_max),
                               ("live quotes of an agent", max(quotes_of.values(), default=0),
                                c.live_quotes_per_agent_max),
                               ("agents", len(state.agent_row), c.agents_max),
                               ("open positions", state.positions.live, c.positions_max),
                               ("client_ids", len(state.client_ids), c.client_ids_max),
                               ("deposit refs", len(state.deposit_refs), c.deposit_refs_max)):
        if count > limit:
            found.append(f"{count} {name}, above the limit {limit}")
    return found
