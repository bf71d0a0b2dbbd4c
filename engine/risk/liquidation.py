"""Mark to market and liquidation (DESIGN §4): the sweep that flags positions, the keeper's
``Liquidate``, and the engine's own liquidation after ``auto_liquidate_after_ms``."""

from __future__ import annotations

import numpy as np

from engine import commands as cmd
from engine import events as ev
from engine import oracle
from engine import rejections as rj
from engine.context import Ctx, transfer
from engine.kernels.sweep_nb import watch_market_nb
from engine.risk import formula_calls, settlement
from engine.risk.formulas import SIDE_LONG, SIDE_NONE, SIDE_SHORT
from engine.state import State
from engine.units import BPS_SCALE, NS_PER_MS, div_half_even

SIDE_NAMES = {SIDE_LONG: "long", SIDE_SHORT: "short"}


def watch(state: State, market: int, price_e8: int, ctx: Ctx, margin_long_e6=None,
          margin_short_e6=None) -> ev.LiquidationWatch | None:
    """The positions of ``market`` that become or stop being liquidatable at ``price_e8``.

    ``margin_*_e6`` override the state's margin columns, to judge the margins an event
    about to be applied will leave (funding).
    """
    t = state.positions
    n_rows = t.high_water
    if t.live == 0:
        return None
    flag_rows = np.empty(n_rows, np.int64)
    clear_rows = np.empty(n_rows, np.int64)
    bands_hold = margin_long_e6 is None and margin_short_e6 is None  # the rows' bands are for their own margins
    n_flag, n_clear = watch_market_nb(
        t.status, t.market, t.size_e6, t.size_open_e6, t.entry_price_e8,
        t.margin_long_e6 if margin_long_e6 is None else margin_long_e6,
        t.margin_short_e6 if margin_short_e6 is None else margin_short_e6,
        t.margin_open_long_e6, t.margin_open_short_e6, t.flagged_ns, t.band_low_e8, t.band_high_e8, bands_hold,
        n_rows, market, price_e8, state.config.markets[market].maintenance_of_initial_bps, flag_rows, clear_rows)
    if n_flag == 0 and n_clear == 0:
        return None
    ids = t.position_id
    return ev.LiquidationWatch(ctx.seq(), ctx.ts_ns, ctx.cmd_id, market=market,
                               flagged=ids[flag_rows[:n_flag]].tolist(), cleared=ids[clear_rows[:n_clear]].tolist())


def side_at(state: State, row: int, price_e8: int) -> int:
    """Which side of one position is below maintenance at ``price_e8`` (scalar path)."""
    t = state.positions
    m = state.config.markets[t.v.market[row]]
    maintenance_bps = m.maintenance_of_initial_bps
    return formula_calls.liquidatable_side(t.v.margin_long_e6[row], t.v.margin_short_e6[row],
                                           t.v.margin_open_long_e6[row], t.v.margin_open_short_e6[row],
                                           t.v.size_open_e6[row], t.v.size_e6[row], t.v.entry_price_e8[row],
                                           price_e8, maintenance_bps)[0]


def decide_liquidate(state: State, c: cmd.Liquidate, ctx: Ctx):
    row = state.position_row.get(c.position_id)
    if row is None:
        return rj.rejected(rj.UNKNOWN_POSITION, f"no open position {c.position_id}", position_id=c.position_id)
    market = state.positions.v.market[row]
    refused = oracle.require(state, market, ctx.ts_ns, oracle.LIQUIDATE)
    if refused is not None:
        return refused
    price_e8 = state.oracle.price_e8[market]
    side = side_at(state, row, price_e8)
    if side == SIDE_NONE:
        return _not_liquidatable(state, row, price_e8)
    if c.keeper not in state.agent_row and len(state.agent_row) >= state.config.agents_max:
        # The reward is paid to the keeper's account, which would be a new one.
        return rj.limit_reached("agents_max", state.config.agents_max,
                                "the venue has as many agent accounts as it may; liquidate from an existing one",
                                agents=len(state.agent_row))
    return [liquidation_event(state, row, side, c.keeper, c.client_id, ctx)]


def _not_liquidatable(state: State, row: int, price_e8: int) -> rj.Rejected:
    t = state.positions
    market = state.config.markets[t.v.market[row]]
    pnl = formula_calls.pnl_long_e6(t.v.size_e6[row], t.v.entry_price_e8[row], price_e8)
    detail = {"position_id": t.v.position_id[row], "price_e8": price_e8}
    for name, margin, margin_open, sign in (("long", t.margin_long_e6, t.margin_open_long_e6, 1),
                                            ("short", t.margin_short_e6, t.margin_open_short_e6, -1)):
        detail[f"equity_{name}_e6"] = int(margin[row]) + sign * pnl
        detail[f"maintenance_{name}_e6"] = round(formula_calls.requirement_e6(
            int(margin_open[row]), t.v.size_open_e6[row], t.v.size_e6[row], t.v.entry_price_e8[row],
            price_e8, market.maintenance_of_initial_bps))
    return rj.Rejected(rj.NOT_LIQUIDATABLE, "neither side is below maintenance at the last price", detail)


def liquidation_event(state: State, row: int, side: int, keeper: str, client_id: str, ctx: Ctx):
    """Liquidate ``side`` of the position at the last price (stale or not).

    The keeper (or, when ``keeper`` is "", the insurance fund) receives the reward: the
    market's ``liquidation_reward_bps`` of the liquidated side's remaining equity.
    """
    t = state.positions
    market = t.v.market[row]
    price_e8 = state.oracle.price_e8[market]
    position_id = t.v.position_id[row]
    transfers: list[ev.Transfer] = []
    done = settlement.close_out(state, row, price_e8, BPS_SCALE, ctx.ts_ns, transfers)

    left_e6 = done.margin_long_e6 if side == SIDE_LONG else done.margin_short_e6
    reward_bps = state.config.markets[market].liquidation_reward_bps
    reward_e6 = div_half_even(max(left_e6, 0) * reward_bps, BPS_SCALE)
    side_account = ev.MARGIN_LONG if side == SIDE_LONG else ev.MARGIN_SHORT
    if keeper:
        transfer(transfers, side_account, position_id, ev.FREE, keeper, reward_e6, "reward")
    else:
        transfer(transfers, side_account, position_id, ev.INSURANCE, "", reward_e6, "reward")
    if side == SIDE_LONG:
        settlement.return_margins(state, row, done.margin_long_e6 - reward_e6, done.margin_short_e6, transfers)
    else:
        settlement.return_margins(state, row, done.margin_long_e6, done.margin_short_e6 - reward_e6, transfers)

    return ev.PositionLiquidated(
        ctx.seq(), ctx.ts_ns, ctx.cmd_id, position_id=position_id, side=SIDE_NAMES[side], keeper=keeper,
        price_e8=price_e8, publish_ns=state.oracle.publish_ns[market], oracle_stale=oracle.is_stale(state, market, ctx.ts_ns),
        funding_long_to_short_e6=done.funding_long_to_short_e6, pnl_long_e6=done.pnl_long_e6,
        insurance_e6=done.insurance_e6, bad_debt_e6=done.bad_debt_e6, reward_e6=reward_e6, client_id=client_id,
        transfers=transfers, oracle_validity=oracle.validity(state, market, ctx.ts_ns))


def due_auto_liquidations(state: State, ctx: Ctx) -> list:
    """Tick phase: liquidate positions flagged at least ``auto_liquidate_after_ms`` ago.

    One liquidation per round (the next is decided against the state it leaves, since each
    may draw on the insurance fund); a flagged position no longer liquidatable at the last
    price is cleared instead.
    """
    if not state.flagged:
        return []
    grace_ns = state.config.auto_liquidate_after_ms * NS_PER_MS
    due = sorted([pid for pid, since_ns in state.flagged.items() if ctx.ts_ns - since_ns >= grace_ns])
    cleared: dict[int, list[int]] = {}
    liquidation = None  # (row, side) of the one to liquidate
    for position_id in due:
        row = state.position_row[position_id]
        market = state.positions.v.market[row]
        if oracle.require(state, market, ctx.ts_ns, oracle.LIQUIDATE) is not None:
            continue  # the price may not be used to liquidate: neither liquidated nor cleared
        side = side_at(state, row, state.oracle.price_e8[market])
        if side != SIDE_NONE:
            liquidation = (row, side)
            break
        cleared.setdefault(market, []).append(position_id)
    events: list = [ev.LiquidationWatch(ctx.seq(), ctx.ts_ns, ctx.cmd_id, market=market, flagged=[], cleared=ids)
                    for market, ids in sorted(cleared.items())]
    if liquidation is not None:
        row, side = liquidation
        events.append(liquidation_event(state, row, side, "", "", ctx))
    return events
