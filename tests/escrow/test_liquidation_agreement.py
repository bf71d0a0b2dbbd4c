"""The engine and the escrow program agree on who is liquidatable (issue 11, defect 4).

Hypothesis builds positions in the real program (LiteSVM) — margins moved away from their
opening values, partly closed — reads them back, and posts oracle prices at and around the
exact maintenance threshold of a side. At each price the engine's predicate
(``engine.risk.formulas``: ``below_maintenance`` per side and ``liquidatable_side``, the
one the kernels and the keeper's path use) must say what the program's ``liquidate`` does:
the side the engine would liquidate is accepted, a side the engine holds safe is refused
with ``NotLiquidatable``.
"""

from __future__ import annotations

import itertools
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from solders.keypair import Keypair

from engine.risk import formulas
from tests.escrow.harness import ERRORS, FEEDS, World

USDC = 1_000_000
SIZE_MAX = 10_000_000 * USDC
PRICE_MAX = 10_000_000 * 10**8
MAINTENANCE_BPS = (5_000, 7, 10_000)  # per market of the world below
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def market(program_path):
    world = World(program_path, initialize=False)
    params = world.program.type["MarketParams"]
    markets = [params(feed_id=list(feed), maintenance_bps=bps, liquidation_reward_bps=500, max_conf_bps=200,
                      reserved=0) for feed, bps in zip(FEEDS, MAINTENANCE_BPS)]
    world.send([world.initialize_ix(markets)], [world.admin])
    long, short, keeper = (world.new_agent(10**15) for _ in range(3))
    for agent in (long, short):
        world.deposit(agent, 10**15)
    world.deposit(keeper, 1)
    return world, long, short, keeper, itertools.count(1)


def edge_price(p, side: int, maintenance_bps: int) -> Fraction | None:
    """Where the side's equity line meets its maintenance line (PnL unrounded)."""
    k = Fraction(p.margin_open_long_e6 if side == 1 else p.margin_open_short_e6, p.size_open_e6) * Fraction(
        maintenance_bps, 10_000)
    margin, size, entry = (p.margin_long_e6 if side == 1 else p.margin_short_e6), p.size_e6, p.entry_price_e8
    if side == 1:
        return None if k >= 1 else Fraction(entry * (size - margin), size) / (1 - k)
    return Fraction(entry * (size + margin), size) / (1 + k)


def _twin(function):
    return getattr(function, "py_func", function)  # NUMBA_DISABLE_JIT=1: already plain Python


def engine_verdict(p, price_e8: int, maintenance_bps: int):
    """``(long below, short below, liquidatable_side)`` by the engine, compiled and as its twin."""
    args = (p.margin_long_e6, p.margin_short_e6, p.margin_open_long_e6, p.margin_open_short_e6, p.size_open_e6,
            p.size_e6, p.entry_price_e8, price_e8, maintenance_bps)
    side, pnl = formulas.liquidatable_side(*args)
    assert (side, pnl) == _twin(formulas.liquidatable_side)(*args), "kernel and twin differ"
    below = []
    for margin, margin_open, sign in ((p.margin_long_e6, p.margin_open_long_e6, 1),
                                      (p.margin_short_e6, p.margin_open_short_e6, -1)):
        verdict = formulas.below_maintenance(margin + sign * pnl, margin_open, p.size_open_e6, p.size_e6,
                                             p.entry_price_e8, price_e8, maintenance_bps)
        assert bool(verdict) == bool(_twin(formulas.below_maintenance)(
            margin + sign * pnl, margin_open, p.size_open_e6, p.size_e6, p.entry_price_e8, price_e8, maintenance_bps))
        below.append(bool(verdict))
        equity = margin + sign * pnl
        if equity > 0:
            left = float(equity) * float(p.size_open_e6) * 10_000.0 * float(p.entry_price_e8)
            right = float(margin_open) * float(maintenance_bps) * float(p.size_e6) * float(price_e8)
            if right * formulas._BELOW_SURE <= left <= right * formulas._ABOVE_SURE:
                event("decided by the exact limbs")
    assert (side != formulas.SIDE_NONE) == (below[0] or below[1])
    assert side == formulas.SIDE_NONE or below[side - 1]
    return below[0], below[1], side, pnl


@SETTINGS
@given(size=st.integers(10 * USDC, SIZE_MAX) | st.sampled_from([10 * USDC, SIZE_MAX]),
       entry=st.integers(10**6, PRICE_MAX) | st.sampled_from([10**6, 6_500_000_000_000, PRICE_MAX]),
       leverage_long=st.integers(1, 100), leverage_short=st.integers(1, 100), market_id=st.integers(0, 2),
       moves=st.tuples(st.integers(-100, 100), st.integers(-100, 100)), close_bps=st.sampled_from([0, 0, 1, 5_000, 9_999]),
       side=st.sampled_from([1, 2]), offset=st.integers(-2, 2), nudge=st.sampled_from([0, 0, 1, -1]),
       at_entry=st.booleans())
def test_engine_and_program_agree_at_the_threshold(market, size, entry, leverage_long, leverage_short, market_id,
                                                   moves, close_bps, side, offset, nudge, at_entry):
    """``at_entry``: the price is the entry price and the side's margin is set to its exact
    maintenance requirement there (±1): the two sides of the inequality equal, or one apart
    — where a float64 predicate errs and only exact arithmetic decides."""
    world, long, short, keeper, ids = market
    maintenance_bps = MAINTENANCE_BPS[market_id]
    pid = next(ids)
    margin_long, margin_short = max(1, size // leverage_long), max(1, size // leverage_short)
    if at_entry:  # opening margins in whole 10 000s make the requirement a whole number
        margin_long, margin_short = (max(10_000, m // 10_000 * 10_000) for m in (margin_long, margin_short))
        moves = (0, 0)
    world.lock(pid, long, short, seq=1, market=market_id, size_e6=size, entry_price_e8=entry,
               margin_long_e6=margin_long, margin_short_e6=margin_short)
    seq = 2
    # Move each margin away from its opening value (as funding and AddMargin/RemoveMargin do).
    for which, (margin, move_pct) in enumerate(zip((margin_long, margin_short), moves), 1):
        delta = max(-margin, margin * move_pct // 100) + nudge
        if delta != 0 and margin + delta >= 0:
            world.send([world.adjust_margin_ix(pid, long, short, seq, which, delta)], [world.authority])
            seq += 1
    if close_bps:  # a partial close at the entry price: size below size_open, margins shrunk
        world.send([world.close_ix(pid, long, short, seq, close_bps, entry, 0)], [world.authority])
        seq += 1
    p = world.position_state(pid)

    if at_entry:
        margin_open = p.margin_open_long_e6 if side == 1 else p.margin_open_short_e6
        margin = p.margin_long_e6 if side == 1 else p.margin_short_e6
        wanted, rest = divmod(margin_open * maintenance_bps * p.size_e6, p.size_open_e6 * 10_000)
        event(f"at entry: requirement whole {rest == 0}, margin {offset:+d}")
        delta = wanted + offset - margin
        if delta != 0 and wanted + offset >= 0:
            world.send([world.adjust_margin_ix(pid, long, short, seq, side, delta)], [world.authority])
            seq += 1
            p = world.position_state(pid)
        edge, price = None, entry
    else:
        edge = edge_price(p, side, maintenance_bps)
        price = entry if edge is None else int(edge) + offset
    if edge is None and not at_entry:
        event("side never reaches maintenance")
    price = max(1, min(PRICE_MAX, price))
    long_below, short_below, engine_side, pnl = engine_verdict(p, price, maintenance_bps)
    event(f"engine: long {long_below}, short {short_below}")

    oracle = world.set_price(Keypair().pubkey(), market_id, price)
    verdicts = {1: long_below, 2: short_below}
    # Refusals first (they change nothing), then the liquidation the engine would send.
    for which in (1, 2):
        if not verdicts[which]:
            ix = world.liquidate_ix(pid, long, short, seq, which, price, pnl, oracle, keeper.pda)
            assert world.error_of([ix], [world.authority]) == ERRORS["NotLiquidatable"], \
                f"the program liquidates side {which} at {price}; the engine says it is safe"
    if engine_side != formulas.SIDE_NONE:
        ix = world.liquidate_ix(pid, long, short, seq, engine_side, price, pnl, oracle, keeper.pda)
        world.send([ix], [world.authority])  # raises if the program refuses the engine's liquidation
        assert world.position_state(pid).status == 3
        other = 3 - engine_side
        if verdicts[other]:
            event("both sides below maintenance")
