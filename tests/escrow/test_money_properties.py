"""The program's exact integer money checks against exact rationals (hypothesis): the PnL
tolerance of close_position and the maintenance test of liquidate, right at their edges.
These exercise the hand-written 64x64->128 multiply, 256-bit products and 128/64 division."""

from __future__ import annotations

import itertools
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from solders.keypair import Keypair

from tests.escrow.harness import ERRORS, World
from tests.escrow.reference import below_maintenance, pnl_exact

USDC = 1_000_000
SIZE_MAX = 10_000_000 * USDC
PRICE_MAX = 10_000_000 * 10**8
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def market(program_path):
    world = World(program_path)
    long, short, keeper = (world.new_agent(10**15) for _ in range(3))
    for a in (long, short):
        world.deposit(a, 10**15)
    world.deposit(keeper, 1)
    return world, long, short, keeper, itertools.count(1)


def open_position(market, size, entry, margin_long, margin_short):
    world, long, short, _, ids = market
    pid = next(ids)
    world.lock(pid, long, short, seq=1, size_e6=size, entry_price_e8=entry, margin_long_e6=margin_long,
               margin_short_e6=margin_short)
    return pid


@SETTINGS
@given(size=st.integers(1, SIZE_MAX), entry=st.integers(10**6, PRICE_MAX), ratio=st.fractions(Fraction(1, 10), 10),
       offset=st.sampled_from([-3, -2, -1, 0, 1, 2, 3]), fraction=st.sampled_from([10_000, 3_333, 1]))
def test_pnl_tolerance_is_exactly_one_micro_usdc(market, size, entry, ratio, offset, fraction):
    world, long, short, _, _ = market
    exit_e8 = max(1, min(PRICE_MAX, int(entry * ratio)))
    pid = open_position(market, size, entry, USDC, USDC)
    closed = size if fraction == 10_000 else (size * fraction + 5_000) // 10_000  # half-even differs only at .5
    if fraction != 10_000 and (closed == 0 or closed >= size):
        return
    if fraction != 10_000 and (size * fraction) % 10_000 == 5_000:
        return  # the half-even tie: covered by the lifecycle tests
    x = Fraction(closed * (exit_e8 - entry), entry)
    candidate = round(x) + offset
    event(f"accepted={abs(candidate - x) <= 1}")
    ix = world.close_ix(pid, long, short, 2, fraction, exit_e8, candidate)
    if abs(candidate - x) <= 1:
        world.send([ix], [world.authority])
    else:
        assert world.error_of([ix], [world.authority]) == ERRORS["PnlMismatch"]


def liquidation_price(margin, margin_open, size_open, size, entry, maintenance_bps, side):
    mm = Fraction(margin_open, size_open) * Fraction(maintenance_bps, 10_000)
    if side == 1:
        return Fraction(entry * (size - margin), size) / (1 - mm)
    return Fraction(entry * (size + margin), size) / (1 + mm)


@SETTINGS
@given(size=st.integers(10 * USDC, 1_000_000 * USDC), entry=st.integers(10**8, 100_000 * 10**8),
       leverage_long=st.integers(2, 50), leverage_short=st.integers(2, 50), side=st.sampled_from([1, 2]),
       offset=st.integers(-3, 3))
def test_maintenance_edge_is_exact(market, size, entry, leverage_long, leverage_short, side, offset):
    world, long, short, keeper, _ = market
    margin_long, margin_short = size // leverage_long, size // leverage_short
    pid = open_position(market, size, entry, margin_long, margin_short)
    margin = margin_long if side == 1 else margin_short
    edge = liquidation_price(margin, margin, size, size, entry, 5_000, side)
    price = int(edge) + offset
    if not 1 <= price <= PRICE_MAX:
        return
    pnl = pnl_exact(size, entry, price)
    expected = below_maintenance(margin, pnl if side == 1 else -pnl, margin, size, size, entry, price, 5_000)
    event(f"liquidatable={expected}")
    oracle = world.set_price(Keypair().pubkey(), 0, price)
    ix = world.liquidate_ix(pid, long, short, 2, side, price, pnl, oracle, keeper.pda)
    if expected:
        world.send([ix], [world.authority])
        assert world.position_state(pid).status == 3
    else:
        assert world.error_of([ix], [world.authority]) == ERRORS["NotLiquidatable"]
