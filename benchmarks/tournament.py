"""Tournament throughput: strategy-runs/s in-process vs a 2-worker Dask ``LocalCluster``.

    PYTHONPATH=. python -m benchmarks.tournament [--quick] [--json FILE]

Generates one seeded journal (20 000 events; 4 000 with ``--quick``), then runs the same
tournament — swarm, dynamic, arbitrage, conservative, spread × 2 seeds of a grid (10 runs;
``--quick``: 3 strategies × 2 = 6) — in-process and on a LocalCluster of 2 worker processes
(the cluster's start-up is timed separately and not counted in its runs/s). Checks the two
give the same figures. Figures: ``tournament.runs_per_s.in_process``,
``tournament.runs_per_s.local_cluster_2``, their ratio, the cluster's start-up seconds.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.report import emit
from engine.markets import default_config
from replay import tournament as t
from replay.generate import generate

TARGETS: dict = {}


def measure(quick: bool = False) -> dict:
    scratch = Path(tempfile.mkdtemp(prefix="bench-tournament-"))
    try:
        events = 4_000 if quick else 20_000
        config = default_config()
        generate(scratch / "j", events, seed=20261121, config=config, progress=False, jump_probability=0.02)
        strategies = ["swarm", "dynamic", "arbitrage"] + ([] if quick else ["conservative", "spread"])
        specs = t.plan([str(scratch / "j")], strategies, {"jitter_e9": [50_000, 100_000]}, config=config)

        started = time.perf_counter()
        here, _ = t.run(specs, in_process=True)
        in_process_s = time.perf_counter() - started

        from distributed import Client, LocalCluster

        started = time.perf_counter()
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=40)
        client = Client(cluster)
        client.run(lambda: __import__("replay.backtest"))  # imports warm on both workers
        startup_s = time.perf_counter() - started
        try:
            started = time.perf_counter()
            results = client.gather(client.map(t.run_one, specs, pure=False))
            dask_s = time.perf_counter() - started
        finally:
            client.close()
            cluster.close()
        same = [t.figures(r) for r in sorted(results, key=lambda r: r["index"])] == [t.figures(r) for r in here]
        in_rate, dask_rate = len(specs) / in_process_s, len(specs) / dask_s
        return {
            "tournament.journal_events": events,
            "tournament.runs": len(specs),
            "tournament.runs_per_s.in_process": round(in_rate, 3),
            "tournament.runs_per_s.local_cluster_2": round(dask_rate, 3),
            "tournament.speedup_local_cluster_2": round(dask_rate / in_rate, 3),
            "tournament.local_cluster_startup_s": round(startup_s, 2),
            "tournament.same_figures": same,
        }
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main(json_path: str | None = None, quick: bool = False) -> int:
    return emit(measure(quick), TARGETS, json_path)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    raise SystemExit(main(args.json, args.quick))
