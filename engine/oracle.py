"""Oracle updates and the guards on the last price (DESIGN §4 Oracle)."""

from __future__ import annotations

from engine import commands as cmd
from engine import events as ev
from engine import rejections as rj
from engine.context import Ctx
from engine.risk import bands, liquidation
from engine.state import State
from engine.units import BPS_SCALE, NS_PER_MS, PRICE_E8_MAX


def is_stale(state: State, market: int, now_ns: int) -> bool:
    publish_ns = state.oracle.publish_ns[market]
    return publish_ns == 0 or now_ns - publish_ns > state.config.markets[market].oracle_age_ns_max


def guard(state: State, market: int, now_ns: int) -> rj.Rejected | None:
    """Reject with ORACLE_STALE / ORACLE_UNCERTAIN unless the last price may be traded on."""
    limits = state.config.markets[market]
    oracle = state.oracle
    publish_ns = oracle.publish_ns[market]
    if publish_ns == 0:
        return rj.rejected(rj.ORACLE_STALE, f"no price yet for market {market}", market=market)
    age_ns = now_ns - publish_ns
    if age_ns > limits.oracle_age_ns_max:
        return rj.rejected(rj.ORACLE_STALE, "the last oracle price is too old", market=market,
                           age_ms=age_ns // NS_PER_MS, age_ms_max=limits.oracle_age_ns_max // NS_PER_MS)
    price_e8, conf_e8 = oracle.price_e8[market], oracle.conf_e8[market]
    if conf_e8 * BPS_SCALE > price_e8 * limits.oracle_conf_bps_max:
        return rj.rejected(rj.ORACLE_UNCERTAIN, "the oracle's confidence interval is too wide", market=market,
                           conf_bps=conf_e8 * BPS_SCALE // price_e8, conf_bps_max=limits.oracle_conf_bps_max)
    return None


def decide_update(state: State, c: cmd.OracleUpdate, ctx: Ctx):
    if not 0 <= c.market < len(state.config.markets):
        return rj.rejected(rj.UNKNOWN_MARKET, f"no market {c.market}", markets=len(state.config.markets))
    if not 1 <= c.price_e8 <= PRICE_E8_MAX:
        return rj.out_of_range("price_e8", c.price_e8, 1, PRICE_E8_MAX)
    if not 0 <= c.conf_e8 <= PRICE_E8_MAX:
        return rj.out_of_range("conf_e8", c.conf_e8, 0, PRICE_E8_MAX)
    last_publish_ns = state.oracle.publish_ns[c.market]
    if c.publish_ns <= last_publish_ns:
        return rj.rejected(rj.ORACLE_OUT_OF_ORDER, "publish time not after the last accepted price",
                           publish_ns=c.publish_ns, publish_ns_min=last_publish_ns + 1)
    events = [ev.OracleUpdated(ctx.seq(), ctx.ts_ns, ctx.cmd_id, market=c.market, price_e8=c.price_e8,
                               conf_e8=c.conf_e8, publish_ns=c.publish_ns, source=c.source)]
    if bands.skips_sweep(state, c.market, c.price_e8):
        return events
    watch = liquidation.watch(state, c.market, c.price_e8, ctx)
    if watch is not None:
        events.append(watch)
    return events
