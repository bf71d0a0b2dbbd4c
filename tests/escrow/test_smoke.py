from tests.escrow.harness import World


def test_initialize_and_deposit(world: World):
    cfg = world.config_state()
    assert cfg.authority == world.authority.pubkey()
    assert cfg.n_markets == 3
    a = world.new_agent(1_000_000_000)
    world.deposit(a, 250_000_000)
    s = world.agent_state(a)
    assert s.free_e6 == 250_000_000 and s.locked_e6 == 0 and s.owner == a.key
    assert world.token_balance(world.vault) == 250_000_000
    world.deposit(a, 1)
    assert world.agent_state(a).free_e6 == 250_000_001
