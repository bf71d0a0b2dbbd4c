"""`agentperp bench escrow` (compute units): what each escrow instruction costs on chain.

Runs the real built program in LiteSVM (``programs/escrow/localnet.py``) through one
seeded lifecycle and records ``compute_units_consumed`` of each instruction. Compute units
are deterministic, so one run is the figure; ``quick`` changes nothing but is accepted for
the suite runner. Keys: ``escrow.cu_<instruction>``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

USDC = 1_000_000
ENTRY_E8 = 65_000 * 10**8
NS = 1_000_000_000


def measure(program_path: Path | None = None) -> dict[str, int]:
    """Compute units per instruction, measured on one lifecycle."""
    from solders.keypair import Keypair

    from programs.escrow.build import build
    from programs.escrow.localnet import World

    world = World(program_path or build())
    cu: dict[str, int] = {}
    trader, maker, keeper = world.new_agent(10_000 * USDC), world.new_agent(10_000 * USDC), world.new_agent(1)
    world.deposit(trader, 1_000 * USDC)  # first deposit creates the agent account
    cu["escrow.cu_deposit_first"] = world.last_cu
    world.deposit(trader, 1_000 * USDC)
    cu["escrow.cu_deposit"] = world.last_cu
    world.deposit(maker, 2_000 * USDC)
    world.deposit(keeper, 1)

    size = 1_000 * USDC
    world.lock(1, trader, maker, seq=1, size_e6=size, entry_price_e8=ENTRY_E8, margin_long_e6=100 * USDC,
               margin_short_e6=100 * USDC, fee_e6=500_000, funding_rate_e9=5_000_000)
    cu["escrow.cu_lock_position"] = world.last_cu
    world.send([world.settle_ix(1, trader, maker, 2, 5 * USDC)], [world.authority])
    cu["escrow.cu_settle_funding"] = world.last_cu
    exit_e8 = 66_000 * 10**8
    closed = size // 2
    pnl = round(closed * (exit_e8 - ENTRY_E8) / ENTRY_E8)
    world.send([world.close_ix(1, trader, maker, 3, 5_000, exit_e8, pnl)], [world.authority])
    cu["escrow.cu_close_position"] = world.last_cu

    world.lock(2, trader, maker, seq=4, size_e6=size, entry_price_e8=ENTRY_E8, margin_long_e6=50 * USDC,
               margin_short_e6=100 * USDC)
    price_e8 = 63_000 * 10**8
    oracle = world.set_price(Keypair().pubkey(), 0, price_e8)
    pnl = round(size * (price_e8 - ENTRY_E8) / ENTRY_E8)
    world.send([world.liquidate_ix(2, trader, maker, 5, 1, price_e8, pnl, oracle, keeper.pda)], [world.authority])
    cu["escrow.cu_liquidate"] = world.last_cu

    world.withdraw(trader, 6, 10 * USDC)
    cu["escrow.cu_withdraw"] = world.last_cu
    return cu


def main(json_path: str | None = None, quick: bool = False) -> int:
    """Print the compute units per instruction; write them as JSON to ``json_path`` if given."""
    figures = measure()
    for key, value in figures.items():
        print(f"{key:32s} {value:>8d} CU")
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1] if len(sys.argv) > 1 else None))
