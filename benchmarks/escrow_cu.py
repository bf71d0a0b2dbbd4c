"""`agentperp bench escrow` (compute units): what each escrow instruction costs on chain.

Runs the real built program in LiteSVM (``programs/escrow/localnet.py``) through one
seeded lifecycle and records ``compute_units_consumed`` of each instruction. Compute units
are deterministic, so one run is the figure. Keys: ``escrow.cu_<instruction>``.

Then the settlement figures (``benchmarks/escrow_settlement.py``): settled events/s into
LiteSVM in-process and through the JSON-RPC backend, each as a ratio to its baseline
measured interleaved in the same run, and the settlement lag (seconds and seq, p50/p99)
under a steady offered load of opens, funding and closes. ``quick``: smaller and fewer runs.
"""

from __future__ import annotations

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
    world.send([world.adjust_margin_ix(1, trader, maker, 3, 1, 10 * USDC)], [world.authority])
    cu["escrow.cu_adjust_margin"] = world.last_cu
    exit_e8 = 66_000 * 10**8
    closed = size // 2
    pnl = round(closed * (exit_e8 - ENTRY_E8) / ENTRY_E8)
    world.send([world.close_ix(1, trader, maker, 4, 5_000, exit_e8, pnl)], [world.authority])
    cu["escrow.cu_close_position"] = world.last_cu

    world.lock(2, trader, maker, seq=5, size_e6=size, entry_price_e8=ENTRY_E8, margin_long_e6=50 * USDC,
               margin_short_e6=100 * USDC)
    price_e8 = 63_000 * 10**8
    oracle = world.set_price(Keypair().pubkey(), 0, price_e8)
    pnl = round(size * (price_e8 - ENTRY_E8) / ENTRY_E8)
    world.send([world.liquidate_ix(2, trader, maker, 6, 1, price_e8, pnl, oracle, keeper.pda)], [world.authority])
    cu["escrow.cu_liquidate"] = world.last_cu

    world.withdraw(trader, 7, 10 * USDC)
    cu["escrow.cu_withdraw"] = world.last_cu
    return cu


def seeded_journal(journal_dir: Path, positions: int, seed: int = 7) -> int:
    """An engine journal: agents deposit, ``positions`` positions open, two funding
    boundaries pass, half the positions close (some partly). Returns its last seq."""
    import random

    from solders.keypair import Keypair

    from engine import commands as cmd
    from engine.core import execute
    from engine.markets import default_config
    from engine.rejections import Rejected
    from engine.state import State
    from ledger.journal import Journal
    from ledger.records import encode_record

    rng = random.Random(seed)
    state = State(default_config())
    journal = Journal.open(journal_dir, fsync_policy="none")
    cmd_id = 0
    base_ns = 1_767_225_600 * NS + 3_600 * NS
    batch: list[bytes] = []

    def run(ts_ns, command):
        nonlocal cmd_id
        cmd_id += 1
        seq_before = state.last_seq
        outcome = execute(state, command, ts_ns, cmd_id)
        batch.append(encode_record(cmd_id, ts_ns, command, outcome, seq_before))
        return outcome

    agents = [str(Keypair.from_seed(rng.randbytes(32)).pubkey()) for _ in range(max(8, positions // 4))]
    for i, agent in enumerate(agents):
        run(base_ns, cmd.Deposit(agent, 100_000 * USDC, f"bench:{i}"))
    run(base_ns, cmd.OracleUpdate(0, ENTRY_E8, 0, base_ns, "bench"))
    opened = []
    for _ in range(positions):
        trader, maker = rng.sample(agents, 2)
        rfq = run(base_ns, cmd.RequestQuote(trader, 0, rng.choice(("long", "short")), rng.randint(100, 2_000) * USDC,
                                            rng.randint(2, 10), 10**8))
        run(base_ns, cmd.SubmitQuote(maker, rfq[0].rfq_id, rng.randint(-2_000_000, 5_000_000), 2_000 * USDC))
        events = run(base_ns, cmd.AcceptQuote(trader, rfq[0].rfq_id))
        opened += [(trader, e.position_id) for e in events if type(e).__name__ == "PositionOpened"]
    for hours in (8, 16):  # two funding boundaries after 00:00
        run(1_767_225_600 * NS + hours * 3_600 * NS, cmd.Tick())
    t = 1_767_225_600 * NS + 17 * 3_600 * NS
    run(t, cmd.OracleUpdate(0, ENTRY_E8 + rng.randint(-500, 500) * 10**8, 0, t, "bench"))
    for trader, pid in opened[: len(opened) // 2]:
        outcome = run(t, cmd.ClosePosition(trader, pid, rng.choice((2_500, 5_000, 10_000))))
        assert not isinstance(outcome, Rejected), outcome
    journal.append_batch(batch)
    journal.close()
    return state.last_seq


def main(json_path: str | None = None, quick: bool = False) -> int:
    """Print the compute units per instruction and the settlement figures; write them as
    JSON to ``json_path`` if given."""
    from benchmarks import escrow_settlement
    from benchmarks.report import emit

    figures: dict = measure()  # compute units, printed in the table with the rest
    figures.update(escrow_settlement.measure(quick))
    return emit(figures, escrow_settlement.TARGETS, json_path)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1] if len(sys.argv) > 1 else None))
