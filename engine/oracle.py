"""Oracle updates, the market's short TWAP, and the guards graded by action (DESIGN §4 Oracle).

Each market's last price has one grade, the most severe that holds (as Drift's
``oracle_validity``)::

    NonPositive     no price yet (the engine never accepts one <= 0)
    TooVolatile     max(price, TWAP) > min(price, TWAP) x (1 + oracle_volatility_bps_max)
    TooUncertain    conf / price > oracle_conf_bps_max
    StaleForMargin  older than oracle_age_ns_max
    Valid

and each action states which grades it accepts (``ACCEPTS``): opening (accept, auto-accept)
and margin removal need Valid; a party's close also takes StaleForMargin while the price
is at most ``oracle_close_age_ns_max`` old; liquidation (keeper or engine) refuses only
NonPositive and TooVolatile, and its event says the grade it used. The table, with each
rejection code, is in docs/engine.md ("Oracle validity").

The TWAP is time-weighted over ``oracle_twap_window_ns``, over the prices *before* the last
one: each price counts for the time it was the last one, until the next was published.
So the last price is judged against the path that led to it, and a price that stays
(updates keep arriving at the new level) becomes the TWAP within one window.
"""

from __future__ import annotations

from engine import commands as cmd
from engine.events import OracleSourceSwitched, OracleUpdated
from engine import rejections as rj
from engine.context import Ctx
from engine.risk import bands, liquidation
from engine.state import State
from engine.units import (BPS_SCALE, FEED_ID_LEN_MAX, NS_PER_MS, ORACLE_SOURCE_LEN_MAX, PRICE_E8_MAX,
                          SOURCE_NAME_LEN_MAX, SOURCES_MAX, div_ceil, div_half_even)

# Grades, most severe first.
NON_POSITIVE = "non_positive"
TOO_VOLATILE = "too_volatile"
TOO_UNCERTAIN = "too_uncertain"
STALE_FOR_MARGIN = "stale_for_margin"
VALID = "valid"
GRADES = (NON_POSITIVE, TOO_VOLATILE, TOO_UNCERTAIN, STALE_FOR_MARGIN, VALID)

# Actions, and the grades each accepts. A close takes a stale price only up to the
# market's close-only age (checked in ``require``).
OPEN = "open"  # accept a quote, auto-accept
REMOVE_MARGIN = "remove_margin"
CLOSE = "close"  # a party's close
LIQUIDATE = "liquidate"  # a keeper's, and the engine's own after its grace
ACCEPTS = {
    OPEN: (VALID,),
    REMOVE_MARGIN: (VALID,),
    CLOSE: (VALID, STALE_FOR_MARGIN),
    LIQUIDATE: (VALID, TOO_UNCERTAIN, STALE_FOR_MARGIN),
}

# Why the feed switched a market's source (``SwitchOracleSource.reason``): the primary went
# stale or diverged from the check (failover); it has been healthy for the failback time,
# or the check itself went stale (failback).
SWITCH_STALE = "stale"
SWITCH_DIVERGED = "diverged"
SWITCH_RECOVERED = "recovered"
SWITCH_CHECK_STALE = "check_stale"
SWITCH_REASONS = (SWITCH_STALE, SWITCH_DIVERGED, SWITCH_RECOVERED, SWITCH_CHECK_STALE)

_CODES = {NON_POSITIVE: rj.ORACLE_INVALID, TOO_VOLATILE: rj.ORACLE_VOLATILE, TOO_UNCERTAIN: rj.ORACLE_UNCERTAIN,
          STALE_FOR_MARGIN: rj.ORACLE_STALE}


def is_stale(state: State, market: int, now_ns: int) -> bool:
    publish_ns = state.oracle.publish_ns[market]
    return publish_ns == 0 or now_ns - publish_ns > state.config.markets[market].oracle_age_ns_max


def too_volatile(price_e8: int, twap_e8: int, volatility_bps_max: int) -> bool:
    """Whether the price and the TWAP are further apart than a factor of 1 + the bound."""
    low, high = (price_e8, twap_e8) if price_e8 <= twap_e8 else (twap_e8, price_e8)
    return high * BPS_SCALE > low * (BPS_SCALE + volatility_bps_max)


def validity(state: State, market: int, now_ns: int) -> str:
    """The grade of ``market``'s last price at ``now_ns`` (one of ``GRADES``)."""
    o = state.oracle
    limits = state.config.markets[market]
    price_e8 = o.price_e8[market]
    if price_e8 <= 0:
        return NON_POSITIVE
    if too_volatile(price_e8, o.twap_e8[market], limits.oracle_volatility_bps_max):
        return TOO_VOLATILE
    conf_e8, conf_bps_max = o.conf_e8[market], limits.oracle_conf_bps_max
    if conf_e8 * BPS_SCALE > price_e8 * conf_bps_max:
        return TOO_UNCERTAIN
    if now_ns - o.publish_ns[market] > limits.oracle_age_ns_max:
        return STALE_FOR_MARGIN
    return VALID


def require(state: State, market: int, now_ns: int, action: str) -> rj.Rejected | None:
    """None if ``action`` may use ``market``'s last price now, else why not (``_CODES``)."""
    grade = validity(state, market, now_ns)
    if grade == VALID:
        return None
    if grade in ACCEPTS[action]:
        if action != CLOSE or now_ns - state.oracle.publish_ns[market] <= \
                state.config.markets[market].oracle_close_age_ns_max:
            return None
    return _refusal(state, market, now_ns, action, grade)


def guard(state: State, market: int, now_ns: int) -> rj.Rejected | None:
    """None if a position may open on the last price (it must be Valid), else why not."""
    return require(state, market, now_ns, OPEN)


def _refusal(state: State, market: int, now_ns: int, action: str, grade: str) -> rj.Rejected:
    """The rejection, with what would have worked for this action."""
    o = state.oracle
    limits = state.config.markets[market]
    price_e8, conf_e8, publish_ns, twap_e8 = o.price_e8[market], o.conf_e8[market], o.publish_ns[market], o.twap_e8[market]
    detail = {"market": market, "action": action, "validity": grade, "accepts": list(ACCEPTS[action])}
    if grade == NON_POSITIVE:
        message = f"no price yet for market {market}" if publish_ns == 0 else "the oracle price is not positive"
        detail.update(price_e8=price_e8, price_e8_min=1)
    elif grade == TOO_VOLATILE:
        bound_bps = limits.oracle_volatility_bps_max
        message = "the oracle price is too far from the market's short TWAP"
        detail.update(price_e8=price_e8, twap_e8=twap_e8, volatility_bps_max=bound_bps,
                      price_e8_min=div_ceil(twap_e8 * BPS_SCALE, BPS_SCALE + bound_bps),
                      price_e8_max=twap_e8 * (BPS_SCALE + bound_bps) // BPS_SCALE,
                      twap_window_ms=limits.oracle_twap_window_ns // NS_PER_MS)
    elif grade == TOO_UNCERTAIN:
        message = "the oracle's confidence interval is too wide"
        detail.update(conf_bps=conf_e8 * BPS_SCALE // price_e8, conf_bps_max=limits.oracle_conf_bps_max)
    else:
        age_ns_max = limits.oracle_close_age_ns_max if action == CLOSE else limits.oracle_age_ns_max
        message = "the last oracle price is too old" + (" even to close" if action == CLOSE else "")
        detail.update(age_ms=(now_ns - publish_ns) // NS_PER_MS, age_ms_max=age_ns_max // NS_PER_MS)
        if action != CLOSE:
            detail["close_age_ms_max"] = limits.oracle_close_age_ns_max // NS_PER_MS
    return rj.Rejected(_CODES[grade], message, detail)


def twap_after(twap_e8: int, last_price_e8: int, last_publish_ns: int, publish_ns: int, window_ns: int) -> int:
    """The TWAP once a price is published at ``publish_ns``: the last price held until then.

    Integer math (half-even once): the result lies between the old TWAP and the last price,
    so it stays within the price bounds; the product is an exact Python integer.
    """
    held_ns = min(publish_ns - last_publish_ns, window_ns)
    return div_half_even(twap_e8 * (window_ns - held_ns) + last_price_e8 * held_ns, window_ns)


def _provenance_refused(c: cmd.OracleUpdate) -> rj.Rejected | None:
    if len(c.source) > ORACLE_SOURCE_LEN_MAX:
        return rj.out_of_range("source", len(c.source), 0, ORACLE_SOURCE_LEN_MAX)
    if len(c.feed_id) > FEED_ID_LEN_MAX:
        return rj.out_of_range("feed_id", len(c.feed_id), 0, FEED_ID_LEN_MAX)
    if len(c.sources) > SOURCES_MAX:
        return rj.out_of_range("sources", len(c.sources), 0, SOURCES_MAX)
    for name in c.sources:
        if not 1 <= len(name) <= SOURCE_NAME_LEN_MAX:
            return rj.out_of_range("sources[]", len(name), 1, SOURCE_NAME_LEN_MAX)
    if not 0 <= c.spread_bps <= BPS_SCALE:
        return rj.out_of_range("spread_bps", c.spread_bps, 0, BPS_SCALE)
    if not 0 <= c.ema_price_e8 <= PRICE_E8_MAX:
        return rj.out_of_range("ema_price_e8", c.ema_price_e8, 0, PRICE_E8_MAX)
    return None


def decide_update(state: State, c: cmd.OracleUpdate, ctx: Ctx):
    market, price_e8, conf_e8, publish_ns = c.market, c.price_e8, c.conf_e8, c.publish_ns  # each read once
    if not 0 <= market < len(state.config.markets):
        return rj.rejected(rj.UNKNOWN_MARKET, f"no market {market}", markets=len(state.config.markets))
    if not 1 <= price_e8 <= PRICE_E8_MAX:
        return rj.out_of_range("price_e8", price_e8, 1, PRICE_E8_MAX)
    if not 0 <= conf_e8 <= PRICE_E8_MAX:
        return rj.out_of_range("conf_e8", conf_e8, 0, PRICE_E8_MAX)
    last_publish_ns = state.oracle.publish_ns[market]
    if publish_ns <= last_publish_ns:
        return rj.rejected(rj.ORACLE_OUT_OF_ORDER, "publish time not after the last accepted price",
                           publish_ns=publish_ns, publish_ns_min=last_publish_ns + 1)
    source, feed_id, sources, spread_bps, ema_price_e8 = c.source, c.feed_id, c.sources, c.spread_bps, c.ema_price_e8
    if feed_id or sources or spread_bps or ema_price_e8 or len(source) > ORACLE_SOURCE_LEN_MAX:
        refused = _provenance_refused(c)
        if refused is not None:
            return refused
    events = [OracleUpdated(ctx.seq(), ctx.ts_ns, ctx.cmd_id, market=market, price_e8=price_e8, conf_e8=conf_e8,
                            publish_ns=publish_ns, source=source, feed_id=feed_id, sources=sources,
                            spread_bps=spread_bps, ema_price_e8=ema_price_e8)]
    if bands.skips_sweep(state, market, price_e8):
        return events
    watch = liquidation.watch(state, market, price_e8, ctx)
    if watch is not None:
        events.append(watch)
    return events


def decide_switch(state: State, c: cmd.SwitchOracleSource, ctx: Ctx):
    """Journal a change of the source pricing a market (an audit event; no state changes)."""
    if not 0 <= c.market < len(state.config.markets):
        return rj.rejected(rj.UNKNOWN_MARKET, f"no market {c.market}", markets=len(state.config.markets))
    for field, value in (("from_source", c.from_source), ("to_source", c.to_source)):
        if not 1 <= len(value) <= ORACLE_SOURCE_LEN_MAX:
            return rj.out_of_range(field, len(value), 1, ORACLE_SOURCE_LEN_MAX)
    if c.reason not in SWITCH_REASONS:
        return rj.rejected(rj.INVALID_FIELD, f"reason must be one of {', '.join(SWITCH_REASONS)}",
                           field="reason", allowed=list(SWITCH_REASONS))
    return [OracleSourceSwitched(ctx.seq(), ctx.ts_ns, ctx.cmd_id, market=c.market, from_source=c.from_source,
                                 to_source=c.to_source, reason=c.reason)]
