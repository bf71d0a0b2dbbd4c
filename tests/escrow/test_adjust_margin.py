"""adjust_margin: the venue moves margin between a side owner's free balance and the
side's margin, once per journal seq, never below zero."""

from __future__ import annotations

import pytest
from solders.keypair import Keypair

from tests.escrow.harness import ENTRY, ERRORS, SIZE, USDC, World, open_position

LONG, SHORT = 1, 2


@pytest.fixture
def opened(world: World):
    """One open position (seq 1): long 50 USDC margin, short 100 USDC; 1 000 USDC deposited each."""
    return open_position(world)


def snapshot(world: World, long, short):
    p = world.position_state(1)
    la, sa = world.agent_state(long), world.agent_state(short)
    return (p.margin_long_e6, p.margin_short_e6, la.free_e6, la.locked_e6, sa.free_e6, sa.locked_e6)


def assert_conserved(world: World, long, short):
    held = world.held_total([long, short], [1])
    assert world.token_balance(world.vault) == held
    p = world.position_state(1)
    assert world.agent_state(long).locked_e6 + world.agent_state(short).locked_e6 == \
        p.margin_long_e6 + p.margin_short_e6


def test_add_and_remove_on_each_side(opened):
    world, long, short = opened
    m_l, m_s, l_free, l_locked, s_free, s_locked = snapshot(world, long, short)

    world.send([world.adjust_margin_ix(1, long, short, 2, LONG, 20 * USDC)], [world.authority])
    assert snapshot(world, long, short) == (m_l + 20 * USDC, m_s, l_free - 20 * USDC, l_locked + 20 * USDC,
                                            s_free, s_locked)
    assert world.position_state(1).last_seq == 2
    assert_conserved(world, long, short)

    world.send([world.adjust_margin_ix(1, long, short, 3, SHORT, -30 * USDC)], [world.authority])
    assert snapshot(world, long, short) == (m_l + 20 * USDC, m_s - 30 * USDC, l_free - 20 * USDC,
                                            l_locked + 20 * USDC, s_free + 30 * USDC, s_locked - 30 * USDC)
    assert_conserved(world, long, short)

    world.send([world.adjust_margin_ix(1, long, short, 4, LONG, -5 * USDC)], [world.authority])
    world.send([world.adjust_margin_ix(1, long, short, 5, SHORT, 7 * USDC)], [world.authority])
    assert snapshot(world, long, short) == (m_l + 15 * USDC, m_s - 23 * USDC, l_free - 15 * USDC,
                                            l_locked + 15 * USDC, s_free + 23 * USDC, s_locked - 23 * USDC)
    assert world.position_state(1).margin_open_long_e6 == 50 * USDC  # the requirement basis is unchanged
    assert_conserved(world, long, short)


def test_remove_the_whole_margin_then_close(opened):
    world, long, short = opened
    world.send([world.adjust_margin_ix(1, long, short, 2, SHORT, -100 * USDC)], [world.authority])
    assert world.position_state(1).margin_short_e6 == 0
    assert world.agent_state(short).locked_e6 == 0
    # a close at the entry price returns the rest: nothing stays locked
    world.send([world.close_ix(1, long, short, 3, 10_000, ENTRY, 0)], [world.authority])
    assert world.agent_state(long).locked_e6 == world.agent_state(short).locked_e6 == 0
    assert world.agent_state(short).free_e6 == 1_000 * USDC
    assert world.token_balance(world.vault) == world.held_total([long, short], [1])


def test_needs_the_venue_authority(opened):
    world, long, short = opened
    before = snapshot(world, long, short)
    impostor = Keypair()
    world.svm.airdrop(impostor.pubkey(), 10**9)
    ix = world.adjust_margin_ix(1, long, short, 2, LONG, -10 * USDC, authority=impostor.pubkey())
    assert world.error_of([ix], [impostor]) == ERRORS["WrongAuthority"]
    # the party itself cannot take its margin back
    ix = world.adjust_margin_ix(1, long, short, 2, LONG, -10 * USDC, authority=long.key)
    assert world.error_of([ix], [long.keypair]) == ERRORS["WrongAuthority"]
    assert snapshot(world, long, short) == before


def test_applied_once_per_seq(opened):
    world, long, short = opened
    world.send([world.adjust_margin_ix(1, long, short, 2, LONG, 10 * USDC)], [world.authority])
    after = snapshot(world, long, short)
    world.svm.expire_blockhash()
    assert world.error_of([world.adjust_margin_ix(1, long, short, 2, LONG, 10 * USDC)],
                          [world.authority]) == ERRORS["AlreadyApplied"]
    # an older seq (the lock's) too
    assert world.error_of([world.adjust_margin_ix(1, long, short, 1, SHORT, -10 * USDC)],
                          [world.authority]) == ERRORS["AlreadyApplied"]
    assert snapshot(world, long, short) == after


def test_removal_beyond_the_margin(opened):
    world, long, short = opened
    before = snapshot(world, long, short)
    assert world.error_of([world.adjust_margin_ix(1, long, short, 2, LONG, -(50 * USDC + 1))],
                          [world.authority]) == ERRORS["InsufficientMargin"]
    assert world.error_of([world.adjust_margin_ix(1, long, short, 2, SHORT, -(100 * USDC + 1))],
                          [world.authority]) == ERRORS["InsufficientMargin"]
    assert snapshot(world, long, short) == before
    world.send([world.adjust_margin_ix(1, long, short, 2, LONG, -50 * USDC)], [world.authority])
    assert world.position_state(1).margin_long_e6 == 0


def test_addition_beyond_the_free_balance(opened):
    world, long, short = opened
    free = world.agent_state(long).free_e6
    assert world.error_of([world.adjust_margin_ix(1, long, short, 2, LONG, free + 1)],
                          [world.authority]) == ERRORS["InsufficientFree"]


@pytest.mark.parametrize("side, delta", [(0, USDC), (3, USDC), (LONG, 0), (LONG, -(2**63)), (SHORT, 2**62)])
def test_bad_arguments(opened, side, delta):
    world, long, short = opened
    assert world.error_of([world.adjust_margin_ix(1, long, short, 2, side, delta)],
                          [world.authority]) == ERRORS["InvalidArgument"]


def test_closed_position(opened):
    world, long, short = opened
    world.send([world.close_ix(1, long, short, 2, 10_000, ENTRY, 0)], [world.authority])
    assert world.error_of([world.adjust_margin_ix(1, long, short, 3, LONG, USDC)],
                          [world.authority]) == ERRORS["PositionNotOpen"]


def test_parties_swapped(opened):
    world, long, short = opened
    assert world.error_of([world.adjust_margin_ix(1, short, long, 2, LONG, USDC)],
                          [world.authority]) == ERRORS["WrongAgent"]
