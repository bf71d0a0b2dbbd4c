"""The RFQ lifecycle (DESIGN §4 RFQ): request, firm quotes, replace and cancel, accept of a
chosen or the best quote, auto-accept, and expiry.

Holds: the trader's ``size/leverage + taker fee`` and each maker's ``collateral + maker
fee`` move from ``free`` to ``held`` when the RFQ or quote opens, and back when it ends
unfilled; at a fill they move to the position's margins and the fee account.

Transitions (an RFQ): open -> filled | cancelled | expired. (A quote): live -> accepted |
released (cancelled, replaced, expired, rfq_closed, not_selected, session_ended).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from engine import commands as cmd
from engine.commands import DURATION_NS
from engine import events as ev
from engine import oracle
from engine import rejections as rj
from engine.context import Ctx, transfer
from engine.kernels.rank_nb import best_quote_row_nb
from engine.state import LIVE, State
from engine.units import AMOUNT_E6_MAX, BPS_SCALE, NS_PER_MS, RATE_E9_MAX, div_ceil, div_half_even


class QuoteTerms(NamedTuple):
    quote_id: int
    maker: str
    rate_e9: int
    collateral_e6: int
    fee_e6: int


# -- reads ------------------------------------------------------------------------------


def _rfq_row(state: State, rfq_id: int, now_ns: int):
    """The row of an RFQ that can still be quoted or accepted, or the rejection saying why not."""
    row = state.rfq_row.get(rfq_id)
    if row is None:
        reason = state.closed_rfqs.get(rfq_id)
        if reason is None and not 1 <= rfq_id < state.next_rfq_id:
            return rj.rejected(rj.UNKNOWN_RFQ, f"no RFQ {rfq_id}", rfq_id=rfq_id)
        if reason == "expired":
            return rj.rejected(rj.RFQ_EXPIRED, f"RFQ {rfq_id} has expired", rfq_id=rfq_id)
        return rj.rejected(rj.RFQ_CLOSED, f"RFQ {rfq_id} is closed", rfq_id=rfq_id, reason=reason or "closed")
    expires_ns = state.rfqs.v.expires_ns[row]
    if now_ns >= expires_ns:
        return rj.rejected(rj.RFQ_EXPIRED, f"RFQ {rfq_id} has expired", rfq_id=rfq_id, expires_ns=expires_ns)
    return row


def _quote_terms(state: State, row: int) -> QuoteTerms:
    q = state.quotes
    return QuoteTerms(q.v.quote_id[row], state.agent_keys[q.v.maker[row]], q.v.rate_e9[row],
                      q.v.collateral_e6[row], q.v.fee_e6[row])


def best_quote_row(state: State, rfq_id: int, now_ns: int) -> int:
    """Row of the best live quote of an RFQ (lowest rate, earliest, lowest id), or -1."""
    q = state.quotes
    return int(best_quote_row_nb(q.status, q.rfq_id, q.rate_e9, q.created_ns, q.quote_id, q.expires_ns,
                                 q.high_water, rfq_id, now_ns))


def _lifetime_ms(requested_ms: int, default_ms: int, low_ms: int, high_ms: int, field: str):
    lifetime_ms = requested_ms or default_ms
    if not low_ms <= lifetime_ms <= high_ms:
        return rj.out_of_range(field, requested_ms, low_ms, high_ms)
    return lifetime_ms


# -- commands ---------------------------------------------------------------------------


def decide_request(state: State, c: cmd.RequestQuote, ctx: Ctx):
    if not 0 <= c.market < len(state.config.markets):
        return rj.rejected(rj.UNKNOWN_MARKET, f"no market {c.market}", markets=len(state.config.markets))
    m = state.config.markets[c.market]
    if c.side not in ("long", "short"):
        return rj.rejected(rj.INVALID_FIELD, "side must be long or short", field="side")
    if c.duration not in DURATION_NS:
        return rj.rejected(rj.INVALID_FIELD, "duration must be perpetual, 1h or 24h", field="duration")
    if not m.size_e6_min <= c.size_e6 <= m.size_e6_max:
        return rj.out_of_range("size_e6", c.size_e6, m.size_e6_min, m.size_e6_max)
    if not 1 <= c.leverage <= m.leverage_max:
        return rj.out_of_range("leverage", c.leverage, 1, m.leverage_max)
    if not -RATE_E9_MAX <= c.max_funding_rate_e9 <= RATE_E9_MAX:
        return rj.out_of_range("max_funding_rate_e9", c.max_funding_rate_e9, -RATE_E9_MAX, RATE_E9_MAX)
    lifetime_ms = _lifetime_ms(c.expires_in_ms, m.rfq_lifetime_ms_default, m.rfq_lifetime_ms_min,
                               m.rfq_lifetime_ms_max, "expires_in_ms")
    if isinstance(lifetime_ms, rj.Rejected):
        return lifetime_ms
    if c.target_rate_e9 is not None:
        if not c.auto_accept:
            return rj.rejected(rj.INVALID_FIELD, "target_rate_e9 needs auto_accept", field="target_rate_e9")
        if not -RATE_E9_MAX <= c.target_rate_e9 <= c.max_funding_rate_e9:
            return rj.out_of_range("target_rate_e9", c.target_rate_e9, -RATE_E9_MAX, c.max_funding_rate_e9)
    margin_e6 = div_ceil(c.size_e6, c.leverage)
    fee_e6 = div_half_even(c.size_e6 * m.taker_fee_bps, BPS_SCALE)
    free_e6 = state.free_of(c.trader)
    if free_e6 < margin_e6 + fee_e6:
        return rj.rejected(rj.INSUFFICIENT_FUNDS, "free balance below margin + taker fee",
                           required_e6=margin_e6 + fee_e6, available_e6=free_e6, margin_e6=margin_e6, fee_e6=fee_e6)
    transfers: list[ev.Transfer] = []
    transfer(transfers, ev.FREE, c.trader, ev.HELD, c.trader, margin_e6 + fee_e6, "hold")
    return [ev.RfqOpened(
        ctx.seq(), ctx.ts_ns, ctx.cmd_id, rfq_id=state.next_rfq_id, trader=c.trader, market=c.market, side=c.side,
        size_e6=c.size_e6, leverage=c.leverage, max_funding_rate_e9=c.max_funding_rate_e9, duration=c.duration,
        expires_ns=ctx.ts_ns + lifetime_ms * NS_PER_MS, margin_e6=margin_e6, fee_e6=fee_e6,
        auto_accept=c.auto_accept, target_rate_e9=c.target_rate_e9, client_id=c.client_id, transfers=transfers)]


def decide_submit(state: State, c: cmd.SubmitQuote, ctx: Ctx):
    row = _rfq_row(state, c.rfq_id, ctx.ts_ns)
    if isinstance(row, rj.Rejected):
        return row
    r = state.rfqs
    if state.agent_keys[r.v.trader[row]] == c.maker:
        return rj.rejected(rj.SELF_QUOTE, "a maker may not quote its own RFQ", rfq_id=c.rfq_id)
    max_rate_e9 = r.v.max_rate_e9[row]
    if not -RATE_E9_MAX <= c.funding_rate_e9 <= RATE_E9_MAX:
        return rj.out_of_range("funding_rate_e9", c.funding_rate_e9, -RATE_E9_MAX, RATE_E9_MAX)
    if c.funding_rate_e9 > max_rate_e9:
        return rj.rejected(rj.RATE_ABOVE_MAX, "funding rate above the RFQ's maximum",
                           funding_rate_e9=c.funding_rate_e9, max_funding_rate_e9=max_rate_e9)
    m = state.config.markets[r.v.market[row]]
    lifetime_ms = _lifetime_ms(c.valid_for_ms, m.quote_lifetime_ms_default, m.quote_lifetime_ms_min,
                               m.quote_lifetime_ms_max, "valid_for_ms")
    if isinstance(lifetime_ms, rj.Rejected):
        return lifetime_ms
    size_e6 = r.v.size_e6[row]
    collateral_e6_min = div_ceil(size_e6, m.leverage_max)
    if not collateral_e6_min <= c.collateral_e6 <= AMOUNT_E6_MAX:
        return rj.rejected(rj.INSUFFICIENT_COLLATERAL if c.collateral_e6 < collateral_e6_min else rj.OUT_OF_RANGE,
                           "collateral must be at least size / the market's max leverage",
                           collateral_e6=c.collateral_e6, required_e6=collateral_e6_min, max_e6=AMOUNT_E6_MAX)
    fee_e6 = div_half_even(size_e6 * m.maker_fee_bps, BPS_SCALE)

    events: list = []
    maker_row = state.agent_row.get(c.maker)
    replaced_id = state.rfq_quotes[c.rfq_id].get(maker_row) if maker_row is not None else None
    available_e6 = state.free_of(c.maker)
    if replaced_id is not None:
        old = _quote_terms(state, state.quote_row[replaced_id])
        available_e6 += old.collateral_e6 + old.fee_e6
        events.append(_release(state, old, c.rfq_id, "replaced", "", ctx))
    if available_e6 < c.collateral_e6 + fee_e6:
        return rj.rejected(rj.INSUFFICIENT_FUNDS, "free balance below collateral + maker fee",
                           required_e6=c.collateral_e6 + fee_e6, available_e6=available_e6)
    quote = QuoteTerms(state.next_quote_id, c.maker, c.funding_rate_e9, c.collateral_e6, fee_e6)
    transfers: list[ev.Transfer] = []
    transfer(transfers, ev.FREE, c.maker, ev.HELD, c.maker, c.collateral_e6 + fee_e6, "hold")
    events.append(ev.QuoteSubmitted(
        ctx.seq(), ctx.ts_ns, ctx.cmd_id, quote_id=quote.quote_id, rfq_id=c.rfq_id, maker=c.maker,
        funding_rate_e9=c.funding_rate_e9, collateral_e6=c.collateral_e6, fee_e6=fee_e6,
        expires_ns=ctx.ts_ns + lifetime_ms * NS_PER_MS, client_id=c.client_id, transfers=transfers))

    # Auto-accept at a target: the arriving quote is the best, or an earlier one would
    # already have triggered the fill.
    if r.v.auto_accept[row] and r.v.has_target[row] and c.funding_rate_e9 <= r.v.target_rate_e9[row] \
            and oracle.guard(state, r.v.market[row], ctx.ts_ns) is None:
        others = [q for q in state.rfq_quotes[c.rfq_id].values() if q != replaced_id]
        events.append(_open_position(state, row, quote, others, "", True, "", ctx))
    return events


def decide_accept(state: State, c: cmd.AcceptQuote, ctx: Ctx):
    row = _rfq_row(state, c.rfq_id, ctx.ts_ns)
    if isinstance(row, rj.Rejected):
        return row
    if state.agent_keys[state.rfqs.v.trader[row]] != c.trader:
        return rj.rejected(rj.NOT_OWNER, "only the RFQ's trader may accept", rfq_id=c.rfq_id)
    refused = oracle.guard(state, state.rfqs.v.market[row], ctx.ts_ns)
    if refused is not None:
        return refused
    if c.quote_id == cmd.BEST_QUOTE:
        quote_row = best_quote_row(state, c.rfq_id, ctx.ts_ns)
        if quote_row < 0:
            return rj.rejected(rj.NO_QUOTES, "the RFQ has no live quote", rfq_id=c.rfq_id)
    else:
        quote_row = state.quote_row.get(c.quote_id)
        if quote_row is None or state.quotes.v.rfq_id[quote_row] != c.rfq_id:
            return rj.rejected(rj.UNKNOWN_QUOTE, f"no live quote {c.quote_id} on RFQ {c.rfq_id}",
                               quote_id=c.quote_id, live_quote_ids=sorted(state.rfq_quotes[c.rfq_id].values()))
        expires_ns = state.quotes.v.expires_ns[quote_row]
        if ctx.ts_ns >= expires_ns:
            return rj.rejected(rj.QUOTE_EXPIRED, f"quote {c.quote_id} has expired", quote_id=c.quote_id,
                               expires_ns=expires_ns)
    quote = _quote_terms(state, quote_row)
    others = [q for q in state.rfq_quotes[c.rfq_id].values() if q != quote.quote_id]
    return [_open_position(state, row, quote, others, c.signature, False, c.client_id, ctx)]


def decide_cancel_quote(state: State, c: cmd.CancelQuote, ctx: Ctx):
    row = state.quote_row.get(c.quote_id)
    if row is None:
        return rj.rejected(rj.UNKNOWN_QUOTE, f"no live quote {c.quote_id}", quote_id=c.quote_id)
    quote = _quote_terms(state, row)
    if quote.maker != c.maker:
        return rj.rejected(rj.NOT_OWNER, "only the quote's maker may cancel it", quote_id=c.quote_id)
    return [_release(state, quote, state.quotes.v.rfq_id[row], "cancelled", c.client_id, ctx)]


def decide_cancel_rfq(state: State, c: cmd.CancelRfq, ctx: Ctx):
    row = state.rfq_row.get(c.rfq_id)
    if row is None:
        return _rfq_row(state, c.rfq_id, ctx.ts_ns)  # the rejection saying why
    if state.agent_keys[state.rfqs.v.trader[row]] != c.trader:
        return rj.rejected(rj.NOT_OWNER, "only the RFQ's trader may cancel it", rfq_id=c.rfq_id)
    return _close_unfilled(state, row, "cancelled", c.client_id, ctx)


def decide_cancel_agent_quotes(state: State, c: cmd.CancelAgentQuotes, ctx: Ctx):
    maker_row = state.agent_row.get(c.maker)
    if maker_row is None:
        return []
    q = state.quotes
    n = q.high_water
    rows = np.flatnonzero((q.status[:n] == LIVE) & (q.maker[:n] == maker_row))
    rows = rows[np.argsort(q.quote_id[rows])]
    return [_release(state, _quote_terms(state, int(row)), q.v.rfq_id[row], "session_ended", "", ctx)
            for row in rows]


# -- tick phases --------------------------------------------------------------------------


def due_quote_expiries(state: State, ctx: Ctx) -> list:
    q = state.quotes
    if q.live == 0:
        return []
    n = q.high_water
    rows = np.flatnonzero((q.status[:n] == LIVE) & (q.expires_ns[:n] <= ctx.ts_ns))
    rows = rows[np.argsort(q.quote_id[rows])]
    return [_release(state, _quote_terms(state, int(row)), q.v.rfq_id[row], "expired", "", ctx) for row in rows]


def due_rfq_expiries(state: State, ctx: Ctx) -> list:
    """RFQs at the end of their lifetime: auto-accept the best quote if asked (and the
    oracle allows), else close them and release every hold. Runs after quote expiry.

    At most one fill per round: a fill takes the next position id, which only its
    PositionOpened, once applied, advances.
    """
    r = state.rfqs
    if r.live == 0:
        return []
    n = r.high_water
    rows = np.flatnonzero((r.status[:n] == LIVE) & (r.expires_ns[:n] <= ctx.ts_ns))
    events: list = []
    for row in rows[np.argsort(r.rfq_id[rows])]:
        row = int(row)
        rfq_id = r.v.rfq_id[row]
        if r.v.auto_accept[row] and oracle.guard(state, r.v.market[row], ctx.ts_ns) is None:
            quote_row = best_quote_row(state, rfq_id, ctx.ts_ns)
            if quote_row >= 0:
                quote = _quote_terms(state, quote_row)
                others = [q for q in state.rfq_quotes[rfq_id].values() if q != quote.quote_id]
                events.append(_open_position(state, row, quote, others, "", True, "", ctx))
                return events
        events.extend(_close_unfilled(state, row, "expired", "", ctx))
    return events


# -- events -------------------------------------------------------------------------------


def _release(state: State, quote: QuoteTerms, rfq_id: int, reason: str, client_id: str, ctx: Ctx):
    transfers: list[ev.Transfer] = []
    transfer(transfers, ev.HELD, quote.maker, ev.FREE, quote.maker, quote.collateral_e6 + quote.fee_e6, "release")
    return ev.QuoteReleased(ctx.seq(), ctx.ts_ns, ctx.cmd_id, quote_id=quote.quote_id, rfq_id=rfq_id,
                            maker=quote.maker, reason=reason, client_id=client_id, transfers=transfers)


def _close_unfilled(state: State, row: int, reason: str, client_id: str, ctx: Ctx) -> list:
    r = state.rfqs
    rfq_id = r.v.rfq_id[row]
    events = [_release(state, _quote_terms(state, state.quote_row[q]), rfq_id, "rfq_closed", "", ctx)
              for q in sorted(state.rfq_quotes[rfq_id].values())]
    trader = state.agent_keys[r.v.trader[row]]
    transfers: list[ev.Transfer] = []
    transfer(transfers, ev.HELD, trader, ev.FREE, trader, r.v.margin_e6[row] + r.v.fee_e6[row], "release")
    events.append(ev.RfqClosed(ctx.seq(), ctx.ts_ns, ctx.cmd_id, rfq_id=rfq_id, trader=trader, reason=reason,
                               client_id=client_id, transfers=transfers))
    return events


def _open_position(state: State, row: int, quote: QuoteTerms, other_quote_ids: list[int], signature: str,
                   auto: bool, client_id: str, ctx: Ctx) -> ev.PositionOpened:
    """Fill the RFQ with ``quote`` at the oracle price: holds to margins and fees, the
    other quotes released."""
    r = state.rfqs
    market = r.v.market[row]
    o = state.oracle
    trader = state.agent_keys[r.v.trader[row]]
    taker_is_long = bool(r.v.is_long[row])
    position_id = state.next_position_id
    margin_e6 = r.v.margin_e6[row]
    taker_margin = ev.MARGIN_LONG if taker_is_long else ev.MARGIN_SHORT
    maker_margin = ev.MARGIN_SHORT if taker_is_long else ev.MARGIN_LONG
    transfers: list[ev.Transfer] = []
    transfer(transfers, ev.HELD, trader, taker_margin, position_id, margin_e6, "margin")
    transfer(transfers, ev.HELD, trader, ev.FEES, "", r.v.fee_e6[row], "fee")
    transfer(transfers, ev.HELD, quote.maker, maker_margin, position_id, quote.collateral_e6, "margin")
    transfer(transfers, ev.HELD, quote.maker, ev.FEES, "", quote.fee_e6, "fee")
    released = sorted(other_quote_ids)
    for quote_id in released:
        other = _quote_terms(state, state.quote_row[quote_id])
        transfer(transfers, ev.HELD, other.maker, ev.FREE, other.maker, other.collateral_e6 + other.fee_e6, "release")
    duration_ns = r.v.duration_ns[row]
    return ev.PositionOpened(
        ctx.seq(), ctx.ts_ns, ctx.cmd_id, position_id=position_id, rfq_id=r.v.rfq_id[row],
        quote_id=quote.quote_id, market=market, long_agent=trader if taker_is_long else quote.maker,
        short_agent=quote.maker if taker_is_long else trader, taker_side="long" if taker_is_long else "short",
        size_e6=r.v.size_e6[row], entry_price_e8=o.price_e8[market], oracle_conf_e8=o.conf_e8[market],
        oracle_publish_ns=o.publish_ns[market], funding_rate_e9=quote.rate_e9,
        margin_long_e6=margin_e6 if taker_is_long else quote.collateral_e6,
        margin_short_e6=quote.collateral_e6 if taker_is_long else margin_e6, taker_fee_e6=r.v.fee_e6[row],
        maker_fee_e6=quote.fee_e6, duration=_DURATION_NAMES[duration_ns],
        expires_ns=ctx.ts_ns + duration_ns if duration_ns else 0, signature=signature, auto_accepted=auto,
        released_quote_ids=released, client_id=client_id, transfers=transfers)


_DURATION_NAMES = {ns: name for name, ns in DURATION_NS.items()}
