"""The escrow tests' world: see ``programs/escrow/localnet.py``."""

from programs.escrow.localnet import *  # noqa: F401,F403
from programs.escrow.localnet import ERRORS, World  # noqa: F401  (explicit for readers)

USDC = 1_000_000
ENTRY = 65_000 * 10**8
SIZE = 1_000 * USDC


def open_position(world: World, fee_e6: int = 0, funding_rate_e9: int = 0):
    """Two agents with 1 000 USDC deposited each and position 1 (seq 1) between them:
    long 50 USDC margin (20x) vs short 100 USDC. Returns ``(world, long, short)``."""
    long, short = world.new_agent(10_000 * USDC), world.new_agent(10_000 * USDC)
    for agent in (long, short):
        world.deposit(agent, 1_000 * USDC)
    world.lock(1, long, short, seq=1, size_e6=SIZE, entry_price_e8=ENTRY, margin_long_e6=50 * USDC,
               margin_short_e6=100 * USDC, fee_e6=fee_e6, funding_rate_e9=funding_rate_e9)
    return world, long, short
