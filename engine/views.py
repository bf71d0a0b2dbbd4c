"""Read-only views of the state, in engine units: what the HTTP API, the status line and the
replay toolkit show. Nothing here writes state; everything outside the engine reads the state
through these (so the state's internal layout can change without breaking its readers).
"""

from __future__ import annotations

import msgspec

from engine.risk import formulas
from engine.state import OPEN, State


class RfqView(msgspec.Struct, frozen=True):
    rfq_id: int
    trader: str
    market: int
    side: str
    size_e6: int
    leverage: int
    max_funding_rate_e9: int
    duration_ns: int
    expires_ns: int
    hold_e6: int  # margin + taker fee held from the trader
    auto_accept: bool
    target_rate_e9: int | None


class QuoteView(msgspec.Struct, frozen=True):
    quote_id: int
    rfq_id: int
    maker: str
    funding_rate_e9: int
    collateral_e6: int
    created_ns: int
    expires_ns: int


class PositionView(msgspec.Struct, frozen=True):
    position_id: int
    market: int
    long_agent: str
    short_agent: str
    taker_side: str
    size_e6: int  # what is still open
    size_opened_e6: int
    entry_price_e8: int
    funding_rate_e9: int
    margin_long_e6: int
    margin_short_e6: int
    opened_ns: int
    expires_ns: int  # 0: perpetual
    unrealized_pnl_long_e6: int  # at the market's last oracle price (0 before any price)


class AccountView(msgspec.Struct, frozen=True):
    agent: str
    free_e6: int
    held_e6: int
    margin_e6: int  # locked in this agent's open positions
    positions: list[PositionView]


class BooksView(msgspec.Struct, frozen=True):
    """The venue's own accounts and running totals."""

    last_seq: int
    fees_e6: int
    insurance_e6: int
    bad_debt_e6: int
    deposited_e6: int
    withdrawn_e6: int
    open_rfqs: int
    live_quotes: int
    open_positions: int
    open_interest_e6: int  # sum of the open size of every position


def rfqs(state: State, market: int | None = None) -> list[RfqView]:
    out = []
    for rfq_id in sorted(state.rfqs):
        r = state.rfqs[rfq_id]
        if market is not None and r.market != market:
            continue
        out.append(RfqView(rfq_id, r.trader, r.market, "long" if r.is_long else "short", r.size_e6, r.leverage,
                           r.max_rate_e9, r.duration_ns, r.expires_ns, r.margin_e6 + r.fee_e6, r.auto_accept,
                           r.target_rate_e9))
    return out


def quotes(state: State, rfq_id: int | None = None) -> list[QuoteView]:
    out = []
    for quote_id in sorted(state.quotes):
        q = state.quotes[quote_id]
        if rfq_id is not None and q.rfq_id != rfq_id:
            continue
        out.append(QuoteView(quote_id, q.rfq_id, q.maker, q.rate_e9, q.collateral_e6, q.created_ns, q.expires_ns))
    return out


def position(state: State, position_id: int) -> PositionView | None:
    row = state.position_row.get(position_id)
    if row is None or state.positions.v.status[row] != OPEN:
        return None
    return _position(state, row)


def positions(state: State, agent: str | None = None, market: int | None = None) -> list[PositionView]:
    t = state.positions.v
    agent_row = state.agent_row.get(agent, -1) if agent is not None else None
    out = []
    for position_id in sorted(state.position_row):
        r = state.position_row[position_id]
        if t.status[r] != OPEN or (market is not None and t.market[r] != market):
            continue
        if agent_row is not None and agent_row not in (t.long_agent[r], t.short_agent[r]):
            continue
        out.append(_position(state, r))
    return out


def _position(state: State, r: int) -> PositionView:
    t, keys = state.positions.v, state.agent_keys
    market = t.market[r]
    price_e8 = state.oracle.price_e8[market]
    pnl = formulas.pnl_long_e6(t.size_e6[r], t.entry_price_e8[r], price_e8) if price_e8 else 0
    return PositionView(t.position_id[r], market, keys[t.long_agent[r]], keys[t.short_agent[r]],
                        "long" if t.taker_is_long[r] else "short", t.size_e6[r], t.size_open_e6[r],
                        t.entry_price_e8[r], t.rate_e9[r], t.margin_long_e6[r], t.margin_short_e6[r],
                        t.opened_ns[r], t.expires_ns[r], int(pnl))


def account(state: State, agent: str) -> AccountView:
    """An agent's balances and open positions (zeros for an agent never seen)."""
    row = state.agent_row.get(agent)
    if row is None:
        return AccountView(agent, 0, 0, 0, [])
    held = positions(state, agent=agent)
    margin = sum(p.margin_long_e6 if p.long_agent == agent else p.margin_short_e6 for p in held)
    return AccountView(agent, state.agents.v.free_e6[row], state.agents.v.held_e6[row], margin, held)


def books(state: State) -> BooksView:
    p = state.positions
    open_rows = p.column("status") == OPEN
    return BooksView(state.last_seq, state.fees_e6, state.insurance_e6, state.bad_debt_e6, state.deposited_e6,
                     state.withdrawn_e6, len(state.rfqs), len(state.quotes), p.live,
                     int(p.column("size_e6")[open_rows].sum()))
