"""The RFQ lifecycle (DESIGN §4 RFQ): request, firm quotes, replace and cancel, accept of a
chosen or the best quote, auto-accept, and expiry.

Holds: the trader's ``size/leverage + taker fee`` and each maker's ``collateral + maker
fee`` move from ``free`` to ``held`` when the RFQ or quote opens, and back when it ends
unfilled; at a fill they move to the position's margins and the fee account.

Transitions (an RFQ): open -> filled | cancelled | expired. (A quote): live -> accepted |
released (cancelled, replaced, expired, rfq_closed, not_selected, session_ended). The tables
are ``engine.lifecycles``; ``apply`` routes every change through them.

Every hold, release and margin is at least 1 micro-USDC (sizes and collateral have positive
minimums), so those transfers are built directly; fees may be zero and go through
``transfer``, which drops a zero.
"""

from __future__ import annotations

from engine import commands as cmd
from engine.commands import BEST_QUOTE, DURATION_NS
from engine.events import (FEES, FREE, HELD, MARGIN_LONG, MARGIN_SHORT, PositionOpened, QuoteReleased, QuoteSubmitted,
                           RfqClosed, RfqOpened, Transfer)
from engine import oracle
from engine import rejections as rj
from engine.rejections import Rejected
from engine.context import Ctx, transfer
from engine.lifecycles import GONE, NEW, RfqState
from engine.state import Quote, Rfq, State
from engine.units import AMOUNT_E6_MAX, BPS_SCALE, NS_PER_MS, RATE_E9_MAX, div_ceil, div_half_even

# -- reads ------------------------------------------------------------------------------


def _open_rfq(state: State, rfq_id: int, now_ns: int) -> Rfq | rj.Rejected:
    """The RFQ if it can still be quoted or accepted (it is in ``state.rfqs``, unexpired),
    else the rejection saying why not (one lookup of the RFQ for both)."""
    rfq = state.rfqs.get(rfq_id)
    if rfq is None:
        where = state.rfq_state(rfq_id)
        if where == NEW:
            return rj.rejected(rj.UNKNOWN_RFQ, f"no RFQ {rfq_id}", rfq_id=rfq_id)
        if where == RfqState.EXPIRED.value:
            return rj.rejected(rj.RFQ_EXPIRED, f"RFQ {rfq_id} has expired", rfq_id=rfq_id)
        return rj.rejected(rj.RFQ_CLOSED, f"RFQ {rfq_id} is closed", rfq_id=rfq_id,
                           reason="closed" if where == GONE else where)
    if now_ns >= rfq.expires_ns:
        return rj.rejected(rj.RFQ_EXPIRED, f"RFQ {rfq_id} has expired", rfq_id=rfq_id, expires_ns=rfq.expires_ns)
    return rfq


def quote_rank(quote: Quote) -> tuple[int, int, int]:
    """DESIGN §4's ranking of quotes, smallest best: lowest funding rate first (the taker
    pays it), then earliest, then lowest id. The one definition every fill uses."""
    return (quote.rate_e9, quote.created_ns, quote.quote_id)


def best_live_quote(quotes, now_ns: int) -> Quote | None:
    """The best of ``quotes`` unexpired at ``now_ns`` by ``quote_rank``, or None.

    An RFQ has at most one quote per maker, so this is a short loop: cheaper than any
    array a kernel could take (docs/engine.md, "State representation").
    """
    best, best_rank = None, None
    for quote in quotes:
        if quote.expires_ns > now_ns:
            rank = quote_rank(quote)
            if best is None or rank < best_rank:
                best, best_rank = quote, rank
    return best


def best_quote(rfq: Rfq, now_ns: int) -> Quote | None:
    """The best live, unexpired quote of the RFQ by ``quote_rank``, or None."""
    return best_live_quote(rfq.quotes.values(), now_ns)


def _room_for_a_position(state: State) -> bool:
    """Fewer open positions than ``positions_max``. An auto-accept with no room does not
    fill: the RFQ stays open and, at its expiry, closes unfilled."""
    return state.positions.live < state.config.positions_max


def _lifetime_ms(requested_ms: int, default_ms: int, low_ms: int, high_ms: int, field: str):
    lifetime_ms = requested_ms or default_ms
    if not low_ms <= lifetime_ms <= high_ms:
        return rj.out_of_range(field, requested_ms, low_ms, high_ms)
    return lifetime_ms


# -- commands ---------------------------------------------------------------------------


def decide_request(state: State, c: cmd.RequestQuote, ctx: Ctx):
    # Each field read once (a struct's attribute read is the compiled engine's costliest step).
    trader, market, side, duration = c.trader, c.market, c.side, c.duration
    size_e6, leverage, max_rate_e9, target_rate_e9 = c.size_e6, c.leverage, c.max_funding_rate_e9, c.target_rate_e9
    markets = state.config.markets
    if not 0 <= market < len(markets):
        return rj.rejected(rj.UNKNOWN_MARKET, f"no market {market}", markets=len(markets))
    m = markets[market]
    if side not in ("long", "short"):
        return rj.rejected(rj.INVALID_FIELD, "side must be long or short", field="side")
    if duration not in DURATION_NS:
        return rj.rejected(rj.INVALID_FIELD, "duration must be perpetual, 1h or 24h", field="duration")
    if not m.size_e6_min <= size_e6 <= m.size_e6_max:
        return rj.out_of_range("size_e6", size_e6, m.size_e6_min, m.size_e6_max)
    if not 1 <= leverage <= m.leverage_max:
        return rj.out_of_range("leverage", leverage, 1, m.leverage_max)
    if not -RATE_E9_MAX <= max_rate_e9 <= RATE_E9_MAX:
        return rj.out_of_range("max_funding_rate_e9", max_rate_e9, -RATE_E9_MAX, RATE_E9_MAX)
    lifetime_ms = _lifetime_ms(c.expires_in_ms, m.rfq_lifetime_ms_default, m.rfq_lifetime_ms_min,
                               m.rfq_lifetime_ms_max, "expires_in_ms")
    if type(lifetime_ms) is Rejected:
        return lifetime_ms
    auto_accept = c.auto_accept
    if target_rate_e9 is not None:
        if not auto_accept:
            return rj.rejected(rj.INVALID_FIELD, "target_rate_e9 needs auto_accept", field="target_rate_e9")
        if not -RATE_E9_MAX <= target_rate_e9 <= max_rate_e9:
            return rj.out_of_range("target_rate_e9", target_rate_e9, -RATE_E9_MAX, max_rate_e9)
    open_rfqs = state.open_rfqs_of.get(trader, 0)
    if open_rfqs >= state.config.open_rfqs_per_agent_max:
        return rj.limit_reached("open_rfqs_per_agent_max", state.config.open_rfqs_per_agent_max,
                                "too many open RFQs; cancel one or wait for one to end", open_rfqs=open_rfqs)
    margin_e6 = div_ceil(size_e6, leverage)
    fee_e6 = div_half_even(size_e6 * m.taker_fee_bps, BPS_SCALE)
    hold_e6 = margin_e6 + fee_e6
    free_e6 = state.free_of(trader)
    if free_e6 < hold_e6:
        return rj.rejected(rj.INSUFFICIENT_FUNDS, "free balance below margin + taker fee",
                           required_e6=hold_e6, available_e6=free_e6, margin_e6=margin_e6, fee_e6=fee_e6)
    transfers = [Transfer(FREE, trader, HELD, trader, hold_e6, "hold")]
    return [RfqOpened(
        ctx.seq(), ctx.ts_ns, ctx.cmd_id, rfq_id=state.next_rfq_id, trader=trader, market=market, side=side,
        size_e6=size_e6, leverage=leverage, max_funding_rate_e9=max_rate_e9, duration=duration,
        expires_ns=ctx.ts_ns + lifetime_ms * NS_PER_MS, margin_e6=margin_e6, fee_e6=fee_e6,
        auto_accept=auto_accept, target_rate_e9=target_rate_e9, client_id=c.client_id, transfers=transfers)]


def decide_submit(state: State, c: cmd.SubmitQuote, ctx: Ctx):
    rfq_id, maker, rate_e9, collateral_e6 = c.rfq_id, c.maker, c.funding_rate_e9, c.collateral_e6
    found = _open_rfq(state, rfq_id, ctx.ts_ns)
    if type(found) is Rejected:
        return found
    rfq = found
    if rfq.trader == maker:
        return rj.rejected(rj.SELF_QUOTE, "a maker may not quote its own RFQ", rfq_id=rfq_id)
    if not -RATE_E9_MAX <= rate_e9 <= RATE_E9_MAX:
        return rj.out_of_range("funding_rate_e9", rate_e9, -RATE_E9_MAX, RATE_E9_MAX)
    if rate_e9 > rfq.max_rate_e9:
        return rj.rejected(rj.RATE_ABOVE_MAX, "funding rate above the RFQ's maximum",
                           funding_rate_e9=rate_e9, max_funding_rate_e9=rfq.max_rate_e9)
    m = state.config.markets[rfq.market]
    lifetime_ms = _lifetime_ms(c.valid_for_ms, m.quote_lifetime_ms_default, m.quote_lifetime_ms_min,
                               m.quote_lifetime_ms_max, "valid_for_ms")
    if type(lifetime_ms) is Rejected:
        return lifetime_ms
    size_e6 = rfq.size_e6
    collateral_e6_min = div_ceil(size_e6, m.leverage_max)
    if not collateral_e6_min <= collateral_e6 <= AMOUNT_E6_MAX:
        return rj.rejected(rj.INSUFFICIENT_COLLATERAL if collateral_e6 < collateral_e6_min else rj.OUT_OF_RANGE,
                           "collateral must be at least size / the market's max leverage",
                           collateral_e6=collateral_e6, required_e6=collateral_e6_min, max_e6=AMOUNT_E6_MAX)
    fee_e6 = div_half_even(size_e6 * m.maker_fee_bps, BPS_SCALE) if m.maker_fee_bps else 0

    events: list = []
    quotes = rfq.quotes
    replaced = quotes.get(maker)
    live_quotes = state.live_quotes_of.get(maker, 0) - (replaced is not None)
    if live_quotes >= state.config.live_quotes_per_agent_max:
        return rj.limit_reached("live_quotes_per_agent_max", state.config.live_quotes_per_agent_max,
                                "too many live quotes; cancel one or wait for one to end", live_quotes=live_quotes)
    available_e6 = state.free_of(maker)
    if replaced is not None:
        available_e6 += replaced.collateral_e6 + replaced.fee_e6
        events.append(_release(replaced, "replaced", "", ctx))
    hold_e6 = collateral_e6 + fee_e6
    if available_e6 < hold_e6:
        return rj.rejected(rj.INSUFFICIENT_FUNDS, "free balance below collateral + maker fee",
                           required_e6=hold_e6, available_e6=available_e6)
    ts_ns = ctx.ts_ns
    expires_ns = ts_ns + lifetime_ms * NS_PER_MS
    quote_id = state.next_quote_id
    transfers = [Transfer(FREE, maker, HELD, maker, hold_e6, "hold")]
    events.append(QuoteSubmitted(
        ctx.seq(), ts_ns, ctx.cmd_id, quote_id=quote_id, rfq_id=rfq_id, maker=maker, funding_rate_e9=rate_e9,
        collateral_e6=collateral_e6, fee_e6=fee_e6, expires_ns=expires_ns, client_id=c.client_id, transfers=transfers))

    # Auto-accept at a target: once a quote at or below the target is live and the oracle
    # allows a fill, the RFQ fills with its best live quote — which need not be the one
    # arriving: a better one may have come while the oracle was stale.
    if rfq.auto_accept and rfq.target_rate_e9 is not None and oracle.guard(state, rfq.market, ts_ns) is None \
            and _room_for_a_position(state):
        arriving = Quote(quote_id, rfq_id, maker, rate_e9, collateral_e6, fee_e6, ts_ns, expires_ns)
        live = [q for q in quotes.values() if q is not replaced]
        live.append(arriving)
        best = best_live_quote(live, ts_ns)
        if best.rate_e9 <= rfq.target_rate_e9:
            others = [q for q in live if q is not best]
            events.append(_open_position(state, rfq, best, others, "", True, "", ctx))
    return events


def decide_accept(state: State, c: cmd.AcceptQuote, ctx: Ctx):
    rfq_id, now_ns = c.rfq_id, ctx.ts_ns
    found = _open_rfq(state, rfq_id, now_ns)
    if type(found) is Rejected:
        return found
    rfq = found
    if rfq.trader != c.trader:
        return rj.rejected(rj.NOT_OWNER, "only the RFQ's trader may accept", rfq_id=rfq_id)
    refused = oracle.guard(state, rfq.market, now_ns)
    if refused is not None:
        return refused
    if not _room_for_a_position(state):
        return rj.limit_reached("positions_max", state.config.positions_max,
                                "the venue holds as many open positions as it may", positions=state.positions.live)
    quote_id = c.quote_id
    if quote_id == BEST_QUOTE:
        quote = best_quote(rfq, now_ns)
        if quote is None:
            return rj.rejected(rj.NO_QUOTES, "the RFQ has no live quote", rfq_id=rfq_id)
    else:
        quote = state.quotes.get(quote_id)
        if quote is None or quote.rfq_id != rfq_id:
            return rj.rejected(rj.UNKNOWN_QUOTE, f"no live quote {quote_id} on RFQ {rfq_id}",
                               quote_id=quote_id, live_quote_ids=sorted([q.quote_id for q in rfq.quotes.values()]))
        if now_ns >= quote.expires_ns:
            return rj.rejected(rj.QUOTE_EXPIRED, f"quote {quote_id} has expired", quote_id=quote_id,
                               expires_ns=quote.expires_ns)
    others = [q for q in rfq.quotes.values() if q is not quote]
    return [_open_position(state, rfq, quote, others, c.signature, False, c.client_id, ctx)]


def decide_cancel_quote(state: State, c: cmd.CancelQuote, ctx: Ctx):
    quote = state.quotes.get(c.quote_id)
    if quote is None:
        return rj.rejected(rj.UNKNOWN_QUOTE, f"no live quote {c.quote_id}", quote_id=c.quote_id)
    if quote.maker != c.maker:
        return rj.rejected(rj.NOT_OWNER, "only the quote's maker may cancel it", quote_id=c.quote_id)
    return [_release(quote, "cancelled", c.client_id, ctx)]


def decide_cancel_rfq(state: State, c: cmd.CancelRfq, ctx: Ctx):
    rfq = state.rfqs.get(c.rfq_id)
    if rfq is None:
        return _open_rfq(state, c.rfq_id, ctx.ts_ns)  # the rejection saying why
    if rfq.trader != c.trader:
        return rj.rejected(rj.NOT_OWNER, "only the RFQ's trader may cancel it", rfq_id=c.rfq_id)
    return _close_unfilled(rfq, "cancelled", c.client_id, ctx)


def decide_cancel_agent_quotes(state: State, c: cmd.CancelAgentQuotes, ctx: Ctx):
    return [_release(q, "session_ended", "", ctx) for q in state.quotes.values() if q.maker == c.maker]


# -- tick phases --------------------------------------------------------------------------


def due_quote_expiries(state: State, ctx: Ctx) -> list:
    """Quotes at the end of their lifetime, released; at most ``tick_events_max`` a round."""
    events: list = []
    limit = state.config.tick_events_max  # 0: no bound
    for quote in state.quotes.values():
        if quote.expires_ns <= ctx.ts_ns:
            events.append(_release(quote, "expired", "", ctx))
            if len(events) == limit:
                break
    return events


def due_rfq_expiries(state: State, ctx: Ctx) -> list:
    """RFQs at the end of their lifetime: auto-accept the best quote if asked (and the
    oracle allows), else close them and release every hold. Runs after quote expiry.

    At most one fill per round: a fill takes the next position id, which only its
    PositionOpened, once applied, advances. At most ``tick_events_max`` RFQs close a round.
    """
    events: list = []
    limit = state.config.tick_events_max  # 0: no bound
    closed = 0
    for rfq in state.rfqs.values():
        if rfq.expires_ns > ctx.ts_ns:
            continue
        if rfq.auto_accept and oracle.guard(state, rfq.market, ctx.ts_ns) is None and _room_for_a_position(state):
            quote = best_quote(rfq, ctx.ts_ns)
            if quote is not None:
                others = [q for q in rfq.quotes.values() if q is not quote]
                events.append(_open_position(state, rfq, quote, others, "", True, "", ctx))
                return events
        events.extend(_close_unfilled(rfq, "expired", "", ctx))
        closed += 1
        if closed == limit:
            break
    return events


# -- events -------------------------------------------------------------------------------


def _release(quote: Quote, reason: str, client_id: str, ctx: Ctx) -> QuoteReleased:
    transfers = [Transfer(HELD, quote.maker, FREE, quote.maker, quote.collateral_e6 + quote.fee_e6, "release")]
    return QuoteReleased(ctx.seq(), ctx.ts_ns, ctx.cmd_id, quote_id=quote.quote_id, rfq_id=quote.rfq_id,
                         maker=quote.maker, reason=reason, client_id=client_id, transfers=transfers)


def _close_unfilled(rfq: Rfq, reason: str, client_id: str, ctx: Ctx) -> list:
    events = [_release(q, "rfq_closed", "", ctx) for q in rfq.quotes.values()]  # in id order (invariants)
    transfers = [Transfer(HELD, rfq.trader, FREE, rfq.trader, rfq.margin_e6 + rfq.fee_e6, "release")]
    events.append(RfqClosed(ctx.seq(), ctx.ts_ns, ctx.cmd_id, rfq_id=rfq.rfq_id, trader=rfq.trader, reason=reason,
                            client_id=client_id, transfers=transfers))
    return events



def _open_position(state: State, rfq: Rfq, quote: Quote, others: list[Quote], signature: str,
                   auto: bool, client_id: str, ctx: Ctx) -> PositionOpened:
    """Fill the RFQ with ``quote`` at the oracle price: holds to margins and fees, the
    ``others`` (every other live quote of the RFQ, in id order) released."""
    market = rfq.market
    o = state.oracle
    trader = rfq.trader
    taker_is_long = rfq.is_long
    position_id = state.next_position_id
    margin_e6 = rfq.margin_e6
    taker_margin = MARGIN_LONG if taker_is_long else MARGIN_SHORT
    maker_margin = MARGIN_SHORT if taker_is_long else MARGIN_LONG
    transfers = [Transfer(HELD, trader, taker_margin, position_id, margin_e6, "margin")]
    transfer(transfers, HELD, trader, FEES, "", rfq.fee_e6, "fee")
    transfers.append(Transfer(HELD, quote.maker, maker_margin, position_id, quote.collateral_e6, "margin"))
    transfer(transfers, HELD, quote.maker, FEES, "", quote.fee_e6, "fee")
    released_quote_ids = []
    for other in others:  # in id order, as their RFQ holds them (engine/invariants.py)
        transfers.append(Transfer(HELD, other.maker, FREE, other.maker, other.collateral_e6 + other.fee_e6,
                                  "release"))
        released_quote_ids.append(other.quote_id)
    duration_ns = rfq.duration_ns
    return PositionOpened(
        ctx.seq(), ctx.ts_ns, ctx.cmd_id, position_id=position_id, rfq_id=rfq.rfq_id,
        quote_id=quote.quote_id, market=market, long_agent=trader if taker_is_long else quote.maker,
        short_agent=quote.maker if taker_is_long else trader, taker_side="long" if taker_is_long else "short",
        size_e6=rfq.size_e6, entry_price_e8=o.price_e8[market], oracle_conf_e8=o.conf_e8[market],
        oracle_publish_ns=o.publish_ns[market], funding_rate_e9=quote.rate_e9,
        margin_long_e6=margin_e6 if taker_is_long else quote.collateral_e6,
        margin_short_e6=quote.collateral_e6 if taker_is_long else margin_e6, taker_fee_e6=rfq.fee_e6,
        maker_fee_e6=quote.fee_e6, duration=_DURATION_NAMES[duration_ns],
        expires_ns=ctx.ts_ns + duration_ns if duration_ns else 0, signature=signature, auto_accepted=auto,
        released_quote_ids=released_quote_ids, client_id=client_id, transfers=transfers)


_DURATION_NAMES = {ns: name for name, ns in DURATION_NS.items()}
