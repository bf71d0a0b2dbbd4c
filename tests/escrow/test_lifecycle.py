"""The whole life of two positions, instruction by instruction, against the real program:
deposits, lock, funding, a partial and a full close, a liquidation paying a keeper, a
withdrawal; every balance checked against the engine's rules, and the vault's token balance
against the sum of everything the program says it holds."""

from __future__ import annotations

from solders.keypair import Keypair

from tests.escrow.harness import NS, World, position_pda
from tests.escrow.reference import PositionModel, div_half_even

USDC = 1_000_000
BTC_E8 = 65_000 * 10**8


def test_full_lifecycle(world: World):
    trader, maker, keeper, c, d = (world.new_agent(10_000 * USDC) for _ in range(5))
    agents = [trader, maker, keeper, c, d]
    for a, amount in zip(agents, (1_000, 2_000, 10, 500, 500)):
        world.deposit(a, amount * USDC)
    assert world.token_balance(world.vault) == 4_010 * USDC
    seq = 10

    # -- position 1: trader long 1000 USDC at 10x, maker short with 100 USDC collateral
    size, fee = 1_000 * USDC, div_half_even(1_000 * USDC * 5, 10_000)
    model = PositionModel(size, BTC_E8, 100 * USDC, 100 * USDC)
    opened_ns = world.now() * NS
    world.lock(1, trader, maker, seq=seq, size_e6=size, entry_price_e8=BTC_E8, margin_long_e6=100 * USDC,
               margin_short_e6=100 * USDC, fee_e6=fee, funding_rate_e9=5_000_000, opened_ns=opened_ns)
    p = world.position_state(1)
    assert (p.size_e6, p.entry_price_e8, p.margin_long_e6, p.margin_short_e6, p.status) == (size, BTC_E8, 100 * USDC,
                                                                                             100 * USDC, 1)
    assert p.long_owner == trader.key and p.short_owner == maker.key and p.funding_rate_e9 == 5_000_000
    assert world.agent_state(trader).free_e6 == 1_000 * USDC - 100 * USDC - fee
    assert world.agent_state(trader).locked_e6 == 100 * USDC
    assert world.config_state().fees_e6 == fee

    # -- funding at the 8h boundary: the taker (long) pays size x rate = 5 USDC
    seq += 1
    world.set_time(world.now() + 8 * 3600)
    funding = div_half_even(size * 5_000_000, 10**9)
    world.send([world.settle_ix(1, trader, maker, seq, funding, until_ns=opened_ns + 8 * 3600 * NS)],
               [world.authority])
    model.funding(funding)
    p = world.position_state(1)
    assert (p.margin_long_e6, p.margin_short_e6) == (model.ml, model.ms) == (95 * USDC, 105 * USDC)
    assert world.agent_state(maker).locked_e6 == 105 * USDC

    # -- partial close (40%) at 66 000, with 1 hour of accrued funding settled first
    seq += 1
    world.set_time(world.now() + 3600)
    accrued = div_half_even(size * 5_000_000 * 3600, 10**9 * 8 * 3600)
    model.funding(accrued)
    exit_e8 = 66_000 * 10**8
    closed, pnl, back_l, back_s = model.close(4_000, exit_e8)
    trader_free, maker_free = world.agent_state(trader).free_e6, world.agent_state(maker).free_e6
    world.send([world.close_ix(1, trader, maker, seq, 4_000, exit_e8, pnl, funding_long_to_short_e6=accrued,
                               until_ns=opened_ns + 9 * 3600 * NS)], [world.authority])
    p = world.position_state(1)
    assert p.size_e6 == size - closed and p.status == 1
    assert (p.margin_long_e6, p.margin_short_e6) == (model.ml, model.ms)
    assert world.agent_state(trader).free_e6 == trader_free + back_l
    assert world.agent_state(maker).free_e6 == maker_free + back_s

    # -- full close at 64 000
    seq += 1
    exit_e8 = 64_000 * 10**8
    closed, pnl, back_l, back_s = model.close(10_000, exit_e8)
    trader_free, maker_free = world.agent_state(trader).free_e6, world.agent_state(maker).free_e6
    world.send([world.close_ix(1, trader, maker, seq, 10_000, exit_e8, pnl)], [world.authority])
    p = world.position_state(1)
    assert p.status == 2 and p.size_e6 == 0 and p.margin_long_e6 == 0 and p.margin_short_e6 == 0
    assert world.agent_state(trader).free_e6 == trader_free + back_l
    assert world.agent_state(maker).free_e6 == maker_free + back_s
    assert world.agent_state(trader).locked_e6 == 0 and world.agent_state(maker).locked_e6 == 0
    assert world.agent_state(trader).open_positions == 0

    # -- position 2: c long at 20x, d short; the price falls and c is liquidated
    seq += 1
    size2 = 1_000 * USDC
    model2 = PositionModel(size2, BTC_E8, 50 * USDC, 100 * USDC)
    world.lock(2, c, d, seq=seq, size_e6=size2, entry_price_e8=BTC_E8, margin_long_e6=50 * USDC,
               margin_short_e6=100 * USDC, fee_e6=0)
    seq += 1
    price_e8 = 63_000 * 10**8
    oracle = world.set_price(Keypair().pubkey(), 0, price_e8, conf_e8=10 * 10**8)
    pnl, reward, back_l, back_s = model2.liquidate("long", price_e8)
    c_free, d_free, k_free = (world.agent_state(x).free_e6 for x in (c, d, keeper))
    world.send([world.liquidate_ix(2, c, d, seq, 1, price_e8, pnl, oracle, keeper.pda)], [world.authority])
    p = world.position_state(2)
    assert p.status == 3 and p.margin_long_e6 == 0 and p.margin_short_e6 == 0
    assert reward == div_half_even((50 * USDC + pnl) * 500, 10_000) > 0
    assert world.agent_state(keeper).free_e6 == k_free + reward
    assert world.agent_state(c).free_e6 == c_free + back_l
    assert world.agent_state(d).free_e6 == d_free + back_s

    # -- withdrawal, signed by the trader and the venue
    seq += 1
    before = world.token_balance(trader.token)
    world.withdraw(trader, seq, 500 * USDC)
    assert world.token_balance(trader.token) == before + 500 * USDC

    # -- conservation: the vault holds exactly what the program accounts for
    cfg = world.config_state()
    held = world.held_total(agents, [1, 2])
    assert world.token_balance(world.vault) == held
    assert cfg.total_deposited_e6 - cfg.total_withdrawn_e6 == held
    assert world.svm.get_account(position_pda(1)) is not None
