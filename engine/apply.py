"""``apply(state, event)``: the only code that writes the state.

Money moves only through the event's transfers (``_move``); the per-event functions below
change everything else (rows, indexes, clocks). Live and replay run this same code.
"""

from __future__ import annotations

import numpy as np

from engine import events as ev
from engine.commands import DURATION_NS
from engine.events import (EXTERNAL, FEES, FREE, HELD, INSURANCE, MARGIN_LONG, MARGIN_SHORT, Checkpoint,
                           Deposited, FundingSettled, LiquidationWatch, MarginChanged, OracleSourceSwitched,
                           OracleUpdated, PositionClosed, PositionLiquidated, PositionOpened, QuoteReleased,
                           QuoteSubmitted, RfqClosed, RfqOpened, Withdrawn)
from engine.oracle import twap_after
from engine.risk import bands
from engine.lifecycles import NEW, POSITION, QUOTE, RFQ, QuoteState, RfqState
from engine.state import OPEN, Quote, Rfq, State
from engine.units import NS_PER_MS


def apply(state: State, event: ev.Event) -> None:
    """Apply one event. Events must come in seq order, with no gap."""
    seq = event.seq
    if seq != state.last_seq + 1:
        raise AssertionError(f"event seq {seq} does not follow {state.last_seq}")
    # Each type's handler, the commonest first: a chain of direct calls (C calls in the
    # compiled engine, where a handler taken from a dict would be a Python call).
    kind = type(event)
    if kind is QuoteSubmitted:
        _quote_submitted(state, event)
    elif kind is PositionOpened:
        _position_opened(state, event)
    elif kind is RfqOpened:
        _rfq_opened(state, event)
    elif kind is OracleUpdated:
        _oracle_updated(state, event)
    elif kind is QuoteReleased:
        _quote_released(state, event)
    elif kind is PositionClosed:
        _position_closed(state, event)
    elif kind is RfqClosed:
        _rfq_closed(state, event)
    elif kind is LiquidationWatch:
        _liquidation_watch(state, event)
    elif kind is PositionLiquidated:
        _position_liquidated(state, event)
    elif kind is MarginChanged:
        _margin_changed(state, event)
    elif kind is FundingSettled:
        _funding_settled(state, event)
    elif kind is Deposited:
        _deposited(state, event)
    elif kind is Withdrawn:
        _withdrawn(state, event)
    elif kind is Checkpoint:
        _checkpoint(state, event)
    elif kind is OracleSourceSwitched:
        _oracle_source_switched(state, event)
    else:
        raise AssertionError(f"no rule applies a {kind.__name__}")
    state.last_seq = seq


def apply_all(state: State, events: list) -> None:
    """Apply ``events`` in order: a run of journaled events in one call (replay's fast
    pass). Compiled, the loop calls ``apply`` in C, without its Python entry per event."""
    for event in events:
        apply(state, event)


def _move(state: State, transfers: list[ev.Transfer]) -> None:
    """Apply each transfer: ``amount_e6`` out of the debit account, into the credit account.

    Agents' accounts (``FREE``, ``HELD``: the agents' table's two columns) are the hot case
    and are handled inline; a transfer between one agent's two (a hold, a release) looks
    the row up once (comparing two keys costs less than a lookup). The rest go
    through ``_add``. Only ``external`` may go below zero (DESIGN §4): ``decide`` checked
    every debit against what the account holds, so a negative balance here means a rule
    let money out that was not there.
    """
    agent_row = state.agent_row
    v = state.agents.v
    for t in transfers:
        amount_e6 = t.amount_e6
        if amount_e6 <= 0:
            raise AssertionError(f"a transfer moves a positive amount, not {amount_e6} ({t.kind})")
        account = t.debit
        debit_ref = t.debit_ref
        row = None
        if account <= HELD:
            row = agent_row.get(debit_ref)
            if row is None:  # a new account may grow the table, and so replace its views
                row = state.agent_index(debit_ref)
                v = state.agents.v
            if account == FREE:
                v.free_e6[row] -= amount_e6
                left_e6 = v.free_e6[row]
            else:
                v.held_e6[row] -= amount_e6
                left_e6 = v.held_e6[row]
            if left_e6 < 0:
                raise AssertionError(f"{t.kind} of {amount_e6} leaves {debit_ref}'s "
                                     f"{'free' if account == FREE else 'held'} at {left_e6}: "
                                     "no agent account may go below zero")
        else:
            _add(state, account, debit_ref, -amount_e6)
        account, credit_ref = t.credit, t.credit_ref
        if account <= HELD:
            if row is None or credit_ref != debit_ref:
                row = agent_row.get(credit_ref)
            if row is None:
                row = state.agent_index(credit_ref)
                v = state.agents.v
            if account == FREE:
                v.free_e6[row] += amount_e6
            else:
                v.held_e6[row] += amount_e6
        else:
            _add(state, account, credit_ref, amount_e6)


def _add(state: State, account: int, ref, delta_e6: int) -> None:
    """Add ``delta_e6`` to a position margin or a system account; a debit must not take
    any but ``external`` below zero."""
    if account == MARGIN_LONG:
        v = state.positions.v
        row = state.position_row[ref]
        v.margin_long_e6[row] += delta_e6
        if v.margin_long_e6[row] < 0:
            raise AssertionError(f"position {ref}'s long margin goes to {v.margin_long_e6[row]}: "
                                 "a margin never goes below zero")
    elif account == MARGIN_SHORT:
        v = state.positions.v
        row = state.position_row[ref]
        v.margin_short_e6[row] += delta_e6
        if v.margin_short_e6[row] < 0:
            raise AssertionError(f"position {ref}'s short margin goes to {v.margin_short_e6[row]}: "
                                 "a margin never goes below zero")
    elif account == FEES:
        state.fees_e6 += delta_e6
        if state.fees_e6 < 0:
            raise AssertionError(f"the fee account goes to {state.fees_e6}: fees are never paid out beyond what came in")
    elif account == INSURANCE:
        state.insurance_e6 += delta_e6
        if state.insurance_e6 < 0:
            raise AssertionError(f"insurance goes to {state.insurance_e6}: it covers shortfalls only as far as it goes")
    elif account == EXTERNAL:
        state.external_e6 += delta_e6  # the one account that goes below zero: -external = net deposits
    else:
        raise AssertionError(f"unknown account kind {account}")


def _remember_client_id(state: State, agent: str, client_id: str, event) -> None:
    """Record an agent's client_id; forget the ones older than the idempotency window.

    ``client_id_order`` holds the entries of ``client_ids`` in the same (time) order, so
    the expired ones are popped from its left in O(1) each. It never holds a stale entry:
    a client_id is recorded again only after its first record left the window (``decide``
    rejects it as DUPLICATE before), and the trim below pops that record first.
    """
    if not client_id:
        return
    ids, order = state.client_ids, state.client_id_order
    cutoff_ns = event.ts_ns - state.config.idempotency_window_ms * NS_PER_MS
    while order and order[0][0] < cutoff_ns:
        ts_ns, seq, key = order.popleft()
        if ids.pop(key) != (seq, ts_ns):
            raise AssertionError(f"client_id order out of step with the window at {key}")
    key = (agent, client_id)
    if key in ids:
        raise AssertionError(f"client_id {key} recorded twice within the window")
    ids[key] = (event.seq, event.ts_ns)
    order.append((event.ts_ns, event.seq, key))


def _deposited(state: State, e: ev.Deposited) -> None:
    _move(state, e.transfers)
    state.deposited_e6 += e.amount_e6
    state.deposit_refs[e.ref] = e.seq


def _withdrawn(state: State, e: ev.Withdrawn) -> None:
    _move(state, e.transfers)
    state.withdrawn_e6 += e.amount_e6
    _remember_client_id(state, e.agent, e.client_id, e)


def _rfq_opened(state: State, e: ev.RfqOpened) -> None:
    rfq_id, trader = e.rfq_id, e.trader
    RFQ.next(NEW if rfq_id == state.next_rfq_id else state.rfq_state(rfq_id), "opened", rfq_id)
    _move(state, e.transfers)
    state.open_rfqs_of[trader] = state.open_rfqs_of.get(trader, 0) + 1
    state.rfqs[rfq_id] = Rfq(rfq_id, trader, e.market, e.side == "long", e.size_e6, e.leverage,
                             e.max_funding_rate_e9, DURATION_NS[e.duration], e.expires_ns, e.margin_e6, e.fee_e6,
                             e.auto_accept, e.target_rate_e9, {})
    state.next_rfq_id = rfq_id + 1
    _remember_client_id(state, trader, e.client_id, e)


def _quote_submitted(state: State, e: ev.QuoteSubmitted) -> None:
    quote_id, rfq_id, maker = e.quote_id, e.rfq_id, e.maker
    QUOTE.next(NEW if quote_id == state.next_quote_id else state.quote_state(quote_id), "submitted", quote_id)
    _move(state, e.transfers)
    state.live_quotes_of[maker] = state.live_quotes_of.get(maker, 0) + 1
    quote = Quote(quote_id, rfq_id, maker, e.funding_rate_e9, e.collateral_e6, e.fee_e6, e.ts_ns, e.expires_ns)
    state.quotes[quote_id] = quote
    rfq = state.rfqs[rfq_id]
    rfq.quotes[maker] = quote  # a replaced quote was released just before
    state.next_quote_id = quote_id + 1
    _remember_client_id(state, maker, e.client_id, e)


def _end_quote(state: State, quote_id: int, happened: str) -> None:
    """End a live quote: accepted, or released for the reason ``happened``."""
    quote = state.quotes.pop(quote_id, None)
    QUOTE.next(_QUOTE_LIVE if quote is not None else state.quote_state(quote_id), happened, quote_id)
    rfq = state.rfqs[quote.rfq_id]
    del rfq.quotes[quote.maker]
    _count_down(state.live_quotes_of, quote.maker)


def _count_down(counts: dict[str, int], agent: str) -> None:
    """One fewer for ``agent``; an agent at zero leaves the dict (it stays bounded)."""
    left = counts[agent] - 1
    if left:
        counts[agent] = left
    else:
        del counts[agent]


def _quote_released(state: State, e: ev.QuoteReleased) -> None:
    _move(state, e.transfers)
    _end_quote(state, e.quote_id, e.reason)
    _remember_client_id(state, e.maker, e.client_id, e)


def _close_rfq(state: State, rfq_id: int, happened: str) -> None:
    """Close an open RFQ: ``filled``, or the ``RfqClosed`` reason (cancelled, expired)."""
    rfq = state.rfqs.pop(rfq_id, None)
    ended = RFQ.next(_RFQ_OPEN if rfq is not None else state.rfq_state(rfq_id), happened, rfq_id)
    assert not rfq.quotes, f"RFQ {rfq_id} closes with live quotes of {sorted(rfq.quotes)}"
    _count_down(state.open_rfqs_of, rfq.trader)
    state.remember_closed_rfq(rfq_id, ended)


def _rfq_closed(state: State, e: ev.RfqClosed) -> None:
    _move(state, e.transfers)
    _close_rfq(state, e.rfq_id, e.reason)
    _remember_client_id(state, e.trader, e.client_id, e)


def _position_opened(state: State, e: ev.PositionOpened) -> None:
    agent_row = state.agent_row
    long_agent, short_agent = agent_row[e.long_agent], agent_row[e.short_agent]  # both hold funds
    positions = state.positions
    row = positions.alloc()
    t = positions.v
    position_id, ts_ns, expires_ns = e.position_id, e.ts_ns, e.expires_ns
    if position_id in state.position_row:
        raise AssertionError(f"position {position_id} is opened twice")
    t.status[row] = POSITION.next(t.status[row], "opened", position_id)
    t.position_id[row] = position_id
    t.market[row] = e.market
    t.taker_is_long[row] = e.taker_side == "long"
    t.long_agent[row] = long_agent
    t.short_agent[row] = short_agent
    t.size_e6[row] = t.size_open_e6[row] = e.size_e6
    t.entry_price_e8[row] = e.entry_price_e8
    t.rate_e9[row] = e.funding_rate_e9
    t.margin_open_long_e6[row] = e.margin_long_e6
    t.margin_open_short_e6[row] = e.margin_short_e6
    t.opened_ns[row] = t.last_funding_ns[row] = ts_ns
    t.expires_ns[row] = expires_ns
    t.flagged_ns[row] = 0
    if expires_ns:
        state.fixed_duration_open += 1
    if ts_ns < state.opened_ns_low:
        state.opened_ns_low = ts_ns
    state.position_row[position_id] = row
    state.next_position_id = position_id + 1
    _move(state, e.transfers)  # the margins exist once the row does
    bands.narrow(state, row)
    _end_quote(state, e.quote_id, "accepted")
    for quote_id in e.released_quote_ids:
        _end_quote(state, quote_id, "not_selected")
    _close_rfq(state, e.rfq_id, "filled")
    _remember_client_id(state, e.long_agent if e.taker_side == "long" else e.short_agent, e.client_id, e)


def _funding_settled(state: State, e: ev.FundingSettled) -> None:
    if e.position_ids:
        rows = _settled_rows(state, e)
        amounts = np.asarray(e.long_to_short_e6, np.int64)
        t = state.positions
        t.margin_long_e6[rows] -= amounts
        t.margin_short_e6[rows] += amounts
        t.last_funding_ns[rows] = e.boundary_ns
        bands.refresh(state)
    state.funding_boundary_ns = e.boundary_ns


def _settled_rows(state: State, e: ev.FundingSettled) -> np.ndarray:
    """The rows of ``e.position_ids``, in their order.

    The settlement kernel lists the open positions not yet settled to the boundary in row
    order, and rows follow from the events alone, so those rows are found with one vector
    pass; checked against the ids, with the id index (a dict lookup per position, ~100×
    slower at a boundary of 10 000 positions) as the fallback.
    """
    t = state.positions
    n = t.high_water
    rows = np.flatnonzero((t.status[:n] == OPEN) & (t.last_funding_ns[:n] < e.boundary_ns))
    ids = np.asarray(e.position_ids, np.int64)
    if len(rows) == len(ids) and np.array_equal(t.position_id[rows], ids):
        return rows
    return np.fromiter(map(state.position_row.__getitem__, e.position_ids), np.int64, len(e.position_ids))


def _remove_position(state: State, position_id: int, happened: str) -> None:
    """The position ends (``closed`` or ``liquidated``): its row is freed."""
    row = state.position_row.pop(position_id)
    POSITION.next(state.positions.v.status[row], happened, position_id)
    state.fixed_duration_open -= state.positions.v.expires_ns[row] != 0
    state.flagged.pop(position_id, None)
    state.positions.release(row)


def _position_closed(state: State, e: ev.PositionClosed) -> None:
    _move(state, e.transfers)
    row = state.position_row[e.position_id]
    if e.remaining_size_e6 == 0:
        _remove_position(state, e.position_id, "closed")
    else:
        POSITION.next(state.positions.v.status[row], "closed_partly", e.position_id)
        state.positions.v.size_e6[row] = e.remaining_size_e6
        state.positions.v.last_funding_ns[row] = e.ts_ns
        bands.narrow(state, row)
    _remember_client_id(state, e.agent, e.client_id, e)


def _position_liquidated(state: State, e: ev.PositionLiquidated) -> None:
    _move(state, e.transfers)
    state.bad_debt_e6 += e.bad_debt_e6
    _remove_position(state, e.position_id, "liquidated")
    _remember_client_id(state, e.keeper, e.client_id, e)


def _margin_changed(state: State, e: ev.MarginChanged) -> None:
    _move(state, e.transfers)
    bands.narrow(state, state.position_row[e.position_id])
    _remember_client_id(state, e.agent, e.client_id, e)


def _oracle_updated(state: State, e: ev.OracleUpdated) -> None:
    o = state.oracle
    market, price_e8, publish_ns = e.market, e.price_e8, e.publish_ns
    if o.publish_ns[market] == 0:
        o.twap_e8[market] = price_e8  # the first price is its own reference
    else:
        limits = state.config.markets[market]
        o.twap_e8[market] = twap_after(o.twap_e8[market], o.price_e8[market], o.publish_ns[market], publish_ns,
                                       limits.oracle_twap_window_ns)
    o.price_e8[market] = price_e8
    o.conf_e8[market] = e.conf_e8
    o.publish_ns[market] = publish_ns
    o.source[market] = e.source
    if not bands.inside(state, market, price_e8):
        bands.recompute(state, market)


def _oracle_source_switched(state: State, e: ev.OracleSourceSwitched) -> None:
    """An audit event: no rule reads the source in use (each price carries its own)."""


def _liquidation_watch(state: State, e: ev.LiquidationWatch) -> None:
    t = state.positions
    for position_id in e.flagged:
        t.flagged_ns[state.position_row[position_id]] = e.ts_ns
        state.flagged[position_id] = e.ts_ns
    for position_id in e.cleared:
        t.flagged_ns[state.position_row[position_id]] = 0
        del state.flagged[position_id]


def _checkpoint(state: State, e: ev.Checkpoint) -> None:
    state.last_checkpoint_seq = e.seq


_RFQ_OPEN = RfqState.OPEN.value
_QUOTE_LIVE = QuoteState.LIVE.value
