"""kill -9 at seeded moments: no duplicate order, no missed hedge.

Each trial runs the hedger in a child process against a simulator in this process and kills it
(SIGKILL) when the simulator receives its n-th order — before executing it (the order still
executes: the request had reached the exchange, its answer never reaches the hedger) or
after. The child is restarted until it finishes; then every client order id is unique on the
exchange and the positions equal the targets within a lot.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys

import pytest

from adapters.hedging.sim.binance import BinanceSim
from adapters.hedging.sim.server import start
from tests.hedging import support as s

TRIALS = int(os.environ.get("AGENTPERP_KILL_TRIALS", "30"))
RESTARTS_MAX = 5


@pytest.fixture(scope="module")
def journal(tmp_path_factory):
    return s.make_journal(tmp_path_factory.mktemp("venue"), 1_500, seed=5)


async def run_child(journal, state_dir, url):
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.hedging.child", str(journal), str(state_dir), url,
        env={**os.environ, "PYTHONPATH": os.getcwd()}, stdout=asyncio.subprocess.DEVNULL)


@pytest.mark.slow
async def test_kill_9_never_hedges_twice_nor_misses(journal, tmp_path):
    from adapters.hedging.hedger import Hedger

    # The targets, from a hedger that only reads (no exchange needed to compute exposure).
    reference = Hedger(s.config(tmp_path / "ref", {"a": "http://127.0.0.1:9"}))
    for batch in s.batches(journal):
        for record in batch:
            for event in record.events:
                reference.exposure.apply(event)
    outcomes = []
    for trial in range(TRIALS):
        rng = random.Random(trial)
        kill_at, phase = rng.randint(1, 30), rng.choice(["before", "after"])
        sim = BinanceSim(seed=trial)
        s.add_accounts(sim, "a")
        runner, port = await start(sim.app())
        url = f"http://127.0.0.1:{port}"
        state_dir = tmp_path / f"t{trial}"
        seen = {"orders": 0, "killed": False}
        child = None

        async def hook(when, params, seen=seen):
            if when == "before":
                seen["orders"] += 1
            if not seen["killed"] and seen["orders"] == kill_at and when == phase:
                seen["killed"] = True
                child.send_signal(signal.SIGKILL)

        sim.on_order = hook
        try:
            for _ in range(RESTARTS_MAX):
                child = await run_child(journal, state_dir, url)
                code = await child.wait()
                if code == 0:
                    break
                assert code == -signal.SIGKILL, f"trial {trial}: the child failed by itself ({code})"
            assert code == 0, f"trial {trial}: not done after {RESTARTS_MAX} starts"
            ids = [o.client_order_id for acct in sim.accounts.values() for o in acct.orders.values()]
            assert len(ids) == len(set(ids)), f"trial {trial}: a client order id was sent twice"
            for maker in s.MAKERS:
                actual = s.exchange_positions({"a": sim}, maker)
                for market, symbol in s.MARKETS.items():
                    target = -(reference.exposure.net_e9.get((maker, market), 0)) / 10**9
                    assert abs(float(actual[symbol]) - target) <= float(s.tolerance(sim, symbol)), \
                        f"trial {trial} (kill at order {kill_at} {phase}): {maker} {symbol} {actual[symbol]} vs {target}"
            outcomes.append((kill_at, phase, seen["killed"], len(ids)))
        finally:
            await runner.cleanup()
    assert sum(killed for _, _, killed, _ in outcomes) >= TRIALS // 2  # most trials did kill mid-run
