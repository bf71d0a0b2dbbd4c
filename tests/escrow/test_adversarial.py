"""Everything the program must refuse by itself, each with its own error code."""

from __future__ import annotations

import pytest
from solders.account import Account
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair

from tests.escrow.harness import (ERRORS, ESCAPE_DELAY_S, FEEDS, ORACLE_MAX_AGE_S, PROGRAM_ID, World,
                                  ENTRY, SIZE, USDC, agent_pda, open_position, position_pda)
from tests.escrow.reference import PositionModel, pnl_exact, pnl_long_e6



@pytest.fixture
def opened(world: World):
    """A world with one open position: long (20x, 50 USDC) vs short (100 USDC)."""
    return open_position(world, fee_e6=500_000, funding_rate_e9=5_000_000)


def code(name: str) -> int:
    return ERRORS[name]


def with_meta(ix: Instruction, index: int, **changes) -> Instruction:
    """The same instruction with one account meta changed (e.g. a signer flag dropped)."""
    metas = list(ix.accounts)
    m = metas[index]
    metas[index] = AccountMeta(changes.get("pubkey", m.pubkey), changes.get("is_signer", m.is_signer),
                               changes.get("is_writable", m.is_writable))
    return Instruction(ix.program_id, bytes(ix.data), metas)


# ------------------------------------------------------------------ signers


def test_withdraw_needs_the_venue_authority(opened):
    world, long, _ = opened
    impostor = Keypair()
    ix = world.withdraw_ix(long, 5, 10 * USDC, authority=impostor.pubkey())
    assert world.error_of([ix], [long.keypair, impostor]) == code("WrongAuthority")
    # the authority's key without its signature
    ix = with_meta(world.withdraw_ix(long, 5, 10 * USDC), 1, is_signer=False)
    assert world.error_of([ix], [long.keypair]) == code("MissingSignature")


def test_withdraw_needs_the_agent(opened):
    world, long, _ = opened
    ix = with_meta(world.withdraw_ix(long, 5, 10 * USDC), 0, is_signer=False)
    assert world.error_of([ix], [world.authority]) == code("MissingSignature")


def test_venue_instructions_need_the_venue_authority(opened):
    world, long, short = opened
    impostor = Keypair()
    world.svm.airdrop(impostor.pubkey(), 10**9)
    assert world.error_of([world.lock_ix(2, long, short, seq=2, size_e6=SIZE, entry_price_e8=ENTRY,
                                         margin_long_e6=USDC, margin_short_e6=USDC, authority=impostor.pubkey())],
                          [impostor]) == code("WrongAuthority")
    assert world.error_of([world.settle_ix(1, long, short, 2, 1, authority=impostor.pubkey())],
                          [impostor]) == code("WrongAuthority")
    assert world.error_of([world.close_ix(1, long, short, 2, 10_000, ENTRY, 0, authority=impostor.pubkey())],
                          [impostor]) == code("WrongAuthority")
    # a party cannot close on its own before the escape hatch opens, nor pretend to be the venue
    assert world.error_of([world.close_ix(1, long, short, 2, 10_000, ENTRY, 0, authority=long.key)],
                          [long.keypair]) == code("WrongAuthority")


def test_withdraw_only_from_free(opened):
    world, long, _ = opened
    free = world.agent_state(long).free_e6
    assert world.error_of([world.withdraw_ix(long, 5, free + 1)], [long.keypair, world.authority]) == code(
        "InsufficientFree")
    world.withdraw(long, 5, free)
    assert world.agent_state(long).free_e6 == 0


def test_withdraw_is_applied_once_per_seq(opened):
    world, long, _ = opened
    world.withdraw(long, 7, USDC)
    assert world.error_of([world.withdraw_ix(long, 7, USDC)], [long.keypair, world.authority]) == code(
        "AlreadyApplied")


# ------------------------------------------------------------------ PDAs and account types


def test_deposit_into_someone_elses_agent_account(opened):
    world, long, short = opened
    ix = world.deposit_ix(long, USDC, agent_pda_key=short.pda)
    assert world.error_of([ix], [long.keypair]) == code("InvalidPda")


def test_deposit_into_a_non_pda_address(world: World):
    a = world.new_agent(100 * USDC)
    ix = world.deposit_ix(a, USDC, agent_pda_key=Keypair().pubkey())
    assert world.error_of([ix], [a.keypair]) == code("InvalidPda")


def test_withdraw_from_someone_elses_agent_account(opened):
    world, long, short = opened
    ix = world.withdraw_ix(long, 5, USDC, agent_pda_key=short.pda)
    assert world.error_of([ix], [long.keypair, world.authority]) == code("InvalidPda")


def test_forged_agent_account_is_refused(opened):
    """A byte-for-byte copy of an agent account, but owned by another program."""
    world, long, short = opened
    real = world.svm.get_account(long.pda)
    forged_key = Keypair().pubkey()
    world.svm.set_account(forged_key, Account(real.lamports, bytes(real.data), Keypair().pubkey(), False, 0))
    ix = world.withdraw_ix(long, 5, USDC, agent_pda_key=forged_key)
    assert world.error_of([ix], [long.keypair, world.authority]) == code("WrongAccountOwner")


def test_position_account_of_another_type(opened):
    world, long, short = opened
    accounts = world._position_accounts(1, long, short, None)
    accounts["position"] = long.pda  # an Agent account of ours where a Position belongs
    from anchorpy import Context
    ix = world.ix["settle_funding"](2, 1, 0, ctx=Context(accounts=accounts))
    assert world.error_of([ix], [world.authority]) == code("WrongAccountType")


def test_lock_at_an_address_that_is_not_the_position_pda(opened):
    world, long, short = opened
    ix = world.lock_ix(2, long, short, seq=2, size_e6=SIZE, entry_price_e8=ENTRY, margin_long_e6=USDC,
                       margin_short_e6=USDC, position=position_pda(3))
    assert world.error_of([ix], [world.authority]) == code("InvalidPda")


def test_wrong_agents_for_the_position(opened):
    world, long, short = opened
    other = world.new_agent(10 * USDC)
    world.deposit(other, 10 * USDC)
    ix = world.settle_ix(1, long, other, 2, 1)
    assert world.error_of([ix], [world.authority]) == code("WrongAgent")


def test_initialize_twice_and_at_a_wrong_address(world: World, program_path):
    assert world.error_of([world.initialize_ix()], [world.admin]) == code("AlreadyInitialized")
    fresh = World(program_path, initialize=False)
    assert fresh.error_of([fresh.initialize_ix(config=Keypair().pubkey())], [fresh.admin]) == code("InvalidPda")


def test_initialize_refuses_a_vault_the_program_does_not_own(program_path):
    w = World(program_path, initialize=False)
    w.token_account(w.vault, Keypair().pubkey(), 0)  # owned by someone else
    assert w.error_of([w.initialize_ix()], [w.admin]) == code("WrongVault")


# ------------------------------------------------------------------ positions


def test_second_lock_of_the_same_position(opened):
    world, long, short = opened
    ix = world.lock_ix(1, long, short, seq=2, size_e6=SIZE, entry_price_e8=ENTRY, margin_long_e6=USDC,
                       margin_short_e6=USDC)
    assert world.error_of([ix], [world.authority]) == code("PositionExists")


def test_lock_needs_the_free_balance(opened):
    world, long, short = opened
    free = world.agent_state(long).free_e6
    ix = world.lock_ix(2, long, short, seq=2, size_e6=SIZE, entry_price_e8=ENTRY, margin_long_e6=free,
                       margin_short_e6=USDC, fee_e6=1)
    assert world.error_of([ix], [world.authority]) == code("InsufficientFree")


def test_lock_with_one_agent_on_both_sides(opened):
    world, long, _ = opened
    ix = world.lock_ix(2, long, long, seq=2, size_e6=SIZE, entry_price_e8=ENTRY, margin_long_e6=USDC,
                       margin_short_e6=USDC)
    assert world.error_of([ix], [world.authority]) == code("SameAgent")


def test_lock_on_an_unknown_market(opened):
    world, long, short = opened
    ix = world.lock_ix(2, long, short, seq=2, market=3, size_e6=SIZE, entry_price_e8=ENTRY, margin_long_e6=USDC,
                       margin_short_e6=USDC)
    assert world.error_of([ix], [world.authority]) == code("UnknownMarket")


def test_lock_survives_a_prefunded_position_address(opened):
    """Lamports sent to a future position's address must not block its lock."""
    world, long, short = opened
    world.svm.airdrop(position_pda(9), 1_000)
    world.lock(9, long, short, seq=2, size_e6=SIZE, entry_price_e8=ENTRY, margin_long_e6=USDC, margin_short_e6=USDC)
    assert world.position_state(9).status == 1


def test_funding_larger_than_the_payers_margin(opened):
    world, long, short = opened
    ix = world.settle_ix(1, long, short, 2, 50 * USDC + 1)
    assert world.error_of([ix], [world.authority]) == code("FundingExceedsMargin")
    ix = world.settle_ix(1, long, short, 2, -(100 * USDC + 1))
    assert world.error_of([ix], [world.authority]) == code("FundingExceedsMargin")
    world.send([world.settle_ix(1, long, short, 2, 50 * USDC)], [world.authority])  # all it has: fine
    assert world.position_state(1).margin_long_e6 == 0


def test_events_apply_once(opened):
    world, long, short = opened
    world.send([world.settle_ix(1, long, short, 2, USDC)], [world.authority])
    assert world.error_of([world.settle_ix(1, long, short, 2, USDC)], [world.authority]) == code("AlreadyApplied")


@pytest.mark.parametrize("delta", [-2, 2, 1_000])
def test_pnl_inconsistent_with_the_prices(opened, delta):
    world, long, short = opened
    exit_e8 = 66_123 * 10**8
    pnl = pnl_long_e6(SIZE, ENTRY, exit_e8)
    ix = world.close_ix(1, long, short, 2, 10_000, exit_e8, pnl + delta)
    assert world.error_of([ix], [world.authority]) == code("PnlMismatch")


def test_pnl_within_rounding_is_accepted(opened):
    world, long, short = opened
    exit_e8 = 66_123 * 10**8
    pnl = pnl_exact(SIZE, ENTRY, exit_e8)
    world.send([world.close_ix(1, long, short, 2, 10_000, exit_e8, pnl + 1)], [world.authority])
    assert world.position_state(1).status == 2


def test_close_of_a_closed_position(opened):
    world, long, short = opened
    world.send([world.close_ix(1, long, short, 2, 10_000, ENTRY, 0)], [world.authority])
    assert world.error_of([world.close_ix(1, long, short, 3, 10_000, ENTRY, 0)], [world.authority]) == code(
        "PositionNotOpen")


# ------------------------------------------------------------------ liquidation and the oracle


def liquidation(world, long, short, price_e8, oracle, side=1, seq=2, exit_e8=None):
    exit_e8 = price_e8 if exit_e8 is None else exit_e8
    k = world.new_agent(1)  # the keeper needs an agent account: a 1-micro deposit makes one
    world.deposit(k, 1)
    pnl = pnl_long_e6(SIZE, ENTRY, exit_e8)
    return world.liquidate_ix(1, long, short, seq, side, exit_e8, pnl, oracle, k.pda)


def test_liquidating_a_healthy_position(opened):
    world, long, short = opened
    price = 64_000 * 10**8  # long equity 34.6 > maintenance 24.6
    oracle = world.set_price(Keypair().pubkey(), 0, price)
    assert world.error_of([liquidation(world, long, short, price, oracle)], [world.authority]) == code(
        "NotLiquidatable")
    assert world.error_of([liquidation(world, long, short, price, oracle, side=2)], [world.authority]) == code(
        "NotLiquidatable")


def test_liquidation_at_a_price_far_from_the_oracle(opened):
    world, long, short = opened
    oracle = world.set_price(Keypair().pubkey(), 0, 63_000 * 10**8)
    ix = liquidation(world, long, short, 63_000 * 10**8, oracle, exit_e8=60_000 * 10**8)
    assert world.error_of([ix], [world.authority]) == code("PriceDeviation")


@pytest.mark.parametrize("case, error", [
    ("owner", "OracleWrongOwner"),
    ("feed", "OracleWrongFeed"),
    ("stale", "OracleStale"),
    ("partial", "OracleInvalid"),
    ("uncertain", "OracleUncertain"),
    ("not_a_price_update", "OracleInvalid"),
])
def test_bad_oracle_accounts(opened, case, error):
    world, long, short = opened
    price = 63_000 * 10**8
    key = Keypair().pubkey()
    if case == "owner":
        world.set_price(key, 0, price, owner=PROGRAM_ID)
    elif case == "feed":
        world.set_price(key, 0, price, feed=FEEDS[1])
    elif case == "stale":
        world.set_price(key, 0, price, age_s=ORACLE_MAX_AGE_S + 1)
    elif case == "partial":
        world.set_price(key, 0, price, full=False)
    elif case == "uncertain":
        world.set_price(key, 0, price, conf_e8=price // 10)
    elif case == "not_a_price_update":
        world.set_price(key, 0, price)
        acct = world.svm.get_account(key)
        data = bytearray(acct.data)
        data[0] ^= 1
        world.svm.set_account(key, Account(acct.lamports, bytes(data), acct.owner, False, 0))
    assert world.error_of([liquidation(world, long, short, price, key)], [world.authority]) == code(error)


def test_oracle_at_the_age_limit_is_fresh(opened):
    world, long, short = opened
    price = 63_000 * 10**8
    oracle = world.set_price(Keypair().pubkey(), 0, price, age_s=ORACLE_MAX_AGE_S)
    world.send([liquidation(world, long, short, price, oracle)], [world.authority])
    assert world.position_state(1).status == 3


def test_oracle_with_another_exponent(opened):
    """Pyth prices may use another exponent: the program rescales to 1e-8."""
    world, long, short = opened
    price = 63_000 * 10**8
    oracle = world.set_price(Keypair().pubkey(), 0, price // 10**3, exponent=-5)
    world.send([liquidation(world, long, short, price, oracle)], [world.authority])
    assert world.position_state(1).status == 3


def test_liquidation_reward_to_the_insurance_fund(opened):
    world, long, short = opened
    price = 63_000 * 10**8
    oracle = world.set_price(Keypair().pubkey(), 0, price)
    model = PositionModel(SIZE, ENTRY, 50 * USDC, 100 * USDC)
    pnl, reward, _, _ = model.liquidate("long", price)
    ix = world.liquidate_ix(1, long, short, 2, 1, price, pnl, oracle, world.config)
    world.send([ix], [world.authority])
    assert world.config_state().insurance_e6 == reward > 0


# ------------------------------------------------------------------ the escape hatch


def test_escape_hatch_before_its_time(opened):
    world, long, short = opened
    world.set_time(world.now() + ESCAPE_DELAY_S - 1)
    oracle = world.set_price(Keypair().pubkey(), 0, ENTRY)
    assert world.error_of([world.emergency_close_ix(1, long.key, long, short, oracle)], [long.keypair]) == code(
        "EscapeTooEarly")
    assert world.error_of([world.emergency_withdraw_ix(long, USDC)], [long.keypair]) == code("EscapeTooEarly")


def test_escape_hatch_resets_with_each_settlement(opened):
    world, long, short = opened
    world.set_time(world.now() + ESCAPE_DELAY_S - 10)
    world.send([world.settle_ix(1, long, short, 2, 0)], [world.authority])
    world.set_time(world.now() + 20)
    oracle = world.set_price(Keypair().pubkey(), 0, ENTRY)
    assert world.error_of([world.emergency_close_ix(1, short.key, long, short, oracle)], [short.keypair]) == code(
        "EscapeTooEarly")


def test_escape_hatch_only_for_parties(opened):
    world, long, short = opened
    world.set_time(world.now() + ESCAPE_DELAY_S)
    oracle = world.set_price(Keypair().pubkey(), 0, ENTRY)
    stranger = Keypair()
    world.svm.airdrop(stranger.pubkey(), 10**9)
    assert world.error_of([world.emergency_close_ix(1, stranger.pubkey(), long, short, oracle)], [stranger]) == code(
        "NotParty")


def test_escape_hatch_after_the_delay(opened):
    """The venue went silent: the short closes alone at the oracle price, with the funding
    accrued since the last settlement, and then withdraws without the venue."""
    world, long, short = opened
    world.set_time(world.now() + ESCAPE_DELAY_S)
    price = 65_650 * 10**8
    oracle = world.set_price(Keypair().pubkey(), 0, price)
    stale = world.set_price(Keypair().pubkey(), 0, price, age_s=ORACLE_MAX_AGE_S + 1)
    assert world.error_of([world.emergency_close_ix(1, short.key, long, short, stale)], [short.keypair]) == code(
        "OracleStale")
    short_free = world.agent_state(short).free_e6
    long_free = world.agent_state(long).free_e6
    world.send([world.emergency_close_ix(1, short.key, long, short, oracle)], [short.keypair])
    p = world.position_state(1)
    assert p.status == 4 and p.margin_long_e6 == 0 and p.margin_short_e6 == 0
    # 3 days of funding at 0.5% per 8h = 4.5%, 45 USDC, from the long (taker); pnl +10 USDC
    funding = 45 * USDC
    pnl = pnl_exact(SIZE, ENTRY, price)
    assert pnl == 10 * USDC
    assert world.agent_state(short).free_e6 == short_free + 100 * USDC + funding - pnl
    assert world.agent_state(long).free_e6 == long_free + 50 * USDC - funding + pnl
    free = world.agent_state(short).free_e6
    world.send([world.emergency_withdraw_ix(short, free)], [short.keypair])
    assert world.agent_state(short).free_e6 == 0
    assert world.token_balance(world.vault) == world.held_total([long, short], [1])


def test_unknown_instruction(world: World):
    ix = Instruction(PROGRAM_ID, bytes(8), [])
    assert world.error_of([ix], []) == code("UnknownInstruction")


def test_not_enough_accounts(world: World):
    a = world.new_agent(10)
    ix = world.deposit_ix(a, 1)
    ix = Instruction(ix.program_id, bytes(ix.data), list(ix.accounts)[:3])
    assert world.error_of([ix], [a.keypair]) == code("NotEnoughAccounts")


def test_agent_pda_helper_matches_the_program(world: World):
    a = world.new_agent(10)
    world.deposit(a, 10)
    assert world.svm.get_account(agent_pda(a.key)).owner == PROGRAM_ID


def test_pnl_clamped_like_the_engine(opened):
    """At a wild price ratio the engine clamps |pnl| to PNL_E6_MAX (1T USDC); the program
    accepts exactly that clamp, and the loser still pays no more than its margin."""
    world, long, short = opened
    pnl_max = 1_000_000_000_000 * USDC
    exit_e8 = 10_000_000 * 10**8  # 10M USD against an entry of 1e-8 USD: the exact pnl is ~1e28
    world.lock(2, long, short, seq=2, size_e6=10_000_000 * USDC, entry_price_e8=1, margin_long_e6=USDC,
               margin_short_e6=USDC)
    assert world.error_of([world.close_ix(2, long, short, 3, 10_000, exit_e8, pnl_max - 1)],
                          [world.authority]) == code("PnlMismatch")
    short_free = world.agent_state(short).free_e6
    world.send([world.close_ix(2, long, short, 3, 10_000, exit_e8, pnl_max)], [world.authority])
    assert world.agent_state(short).free_e6 == short_free  # lost its whole 1 USDC margin, nothing more
    assert world.config_state().bad_debt_e6 == pnl_max - USDC
