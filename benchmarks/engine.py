"""`agentperp bench engine`: the engine core's throughput and its kernels' speed.

- ``engine.commands_per_s``: a seeded, realistic mix through ``execute`` (decide + apply)
  on one core with the kernels warm: RFQ + 3 quotes + accept, oracle updates, closes and
  ticks that cross 8h funding boundaries. The command list is built by a dry run (so ids
  are known) and then replayed into a fresh state under the clock, GC off; the median of
  ``MIX_RUNS`` runs.
  ``engine.command_us_by_type``: the mean per command type, from one more run.
- ``kernels.sweep_1m_ms`` / ``kernels.funding_1m_ms``: one market sweep / one funding
  settlement over 1 000 000 open positions; and the pure-Python twins' figures and ratios.
- ``engine.compiled_over_interpreted``: the mix on the compiled engine (this process) ÷ the
  same mix in a worker process with the engine's modules interpreted
  (``AGENTPERP_ENGINE=python``), interleaved run by run (``benchmarks.interleave``), both
  on one CPU (``engine.pinned_cpu``: ``interleave.one_cpu``); ``engine.commands_per_s`` is
  the median of the compiled runs. Target >= 3.
  ``engine.compiled`` says whether the compiled engine was built (``make native``).
- ``kernels.scaling``: sweep and funding times at several position counts (and a plot).
- ``memory.engine_rss_mb_per_1m_positions``: the RSS that ``n`` open positions add to a
  fresh process's engine state (opened by RFQ, quote and accept), per million.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.interleave import PAIRS_MIN, interleave, one_cpu
from benchmarks.report import emit, percentiles
from ledger import compiled
from engine import commands as cmd
from engine.core import execute
from engine.kernels import reference
from engine.kernels.funding_nb import settle_funding_nb
from engine.kernels.sweep_nb import sweep_market_nb, sweep_outputs
from engine.markets import default_config
from engine.rejections import Rejected
from engine.state import State
from engine.units import NS_PER_MS, NS_PER_S

SEED = 20261121
START_NS = 1_767_225_600 * NS_PER_S
TARGETS = {"engine.compiled_over_interpreted": (">=", 3.0), "kernels.sweep_1m_ms": ("<=", 10.0),
           "kernels.funding_1m_ms": ("<=", 50.0)}


# -- the command mix ------------------------------------------------------------------------


ROUND_NS = 4 * NS_PER_S  # venue time per round: 30 000 rounds span 33 h, four funding boundaries
TICK_EVERY_ROUNDS = 4
MIX_RUNS = 5


def build_mix(n_rounds: int, seed: int = SEED) -> list[tuple[object, int]]:
    """``(command, ts_ns)`` pairs of a realistic session, ids resolved by a dry run.

    Each round: one oracle update (markets in turn, so none goes stale), an RFQ on a random
    market, three quotes, the accept of the best; a close (in full, or half) of a random
    open position in three rounds out of ten (always once 2 000 are open); a Tick every
    fourth round. Time runs fast (``ROUND_NS`` a round) so funding boundaries come by.
    """
    rng = np.random.default_rng(seed)
    state = State(default_config())
    traders = [f"trader{i:03d}" for i in range(200)]
    makers = [f"maker{i:02d}" for i in range(20)]
    prices_e8 = [100_000 * 10**8, 4_000 * 10**8, 200 * 10**8]
    mix: list[tuple[object, int]] = []
    now_ns = START_NS

    def run(command):
        mix.append((command, now_ns))
        return execute(state, command, now_ns, len(mix))

    for agent in traders + makers:
        run(cmd.Deposit(agent, 10_000_000 * 1_000_000, f"seed-{agent}"))
    for market, price_e8 in enumerate(prices_e8):
        run(cmd.OracleUpdate(market, price_e8, price_e8 // 10_000, now_ns, "bench"))
    open_positions: list[int] = []
    for round_index in range(n_rounds):
        now_ns += ROUND_NS
        priced = round_index % 3
        prices_e8[priced] = int(prices_e8[priced] * (1 + rng.normal(0, 0.0005)))
        run(cmd.OracleUpdate(priced, prices_e8[priced], prices_e8[priced] // 10_000, now_ns, "bench"))
        market = int(rng.integers(0, 3))
        trader = traders[int(rng.integers(0, len(traders)))]
        size_e6 = int(rng.integers(10, 5_000)) * 1_000_000
        opened = run(cmd.RequestQuote(trader, market, "long" if rng.random() < 0.5 else "short", size_e6,
                                      int(rng.integers(2, 21)), 10_000_000, "perpetual", 10_000))
        if isinstance(opened, Rejected):
            continue
        rfq_id = opened[0].rfq_id
        for maker_index in rng.choice(len(makers), 3, replace=False):
            run(cmd.SubmitQuote(makers[int(maker_index)], rfq_id, int(rng.integers(-1_000_000, 5_000_000)),
                                size_e6 // 5, 5_000))
        filled = run(cmd.AcceptQuote(trader, rfq_id, cmd.BEST_QUOTE, "sig"))
        if not isinstance(filled, Rejected):
            open_positions.append(filled[0].position_id)
        if len(open_positions) > 2_000 or (open_positions and rng.random() < 0.3):
            position_id = open_positions.pop(int(rng.integers(0, len(open_positions))))
            if position_id in state.position_row:  # not liquidated meanwhile
                row = state.position_row[position_id]
                fraction_bps = 10_000 if rng.random() < 0.8 else 5_000
                closed = run(cmd.ClosePosition(state.agent_keys[int(state.positions.long_agent[row])], position_id,
                                               fraction_bps))
                if fraction_bps < 10_000 and not isinstance(closed, Rejected):
                    open_positions.append(position_id)  # the other half stays open, to be closed later
        if round_index % TICK_EVERY_ROUNDS == TICK_EVERY_ROUNDS - 1:
            run(cmd.Tick())
    return mix


def mix_outcomes(mix: list[tuple[object, int]]) -> dict[str, int]:
    """How many commands of each type were rejected, by code: a mix whose commands are
    mostly rejected would measure the cheap paths."""
    state = State(default_config())
    counts: dict[str, int] = {}
    for cmd_id, (command, ts_ns) in enumerate(mix, 1):
        outcome = execute(state, command, ts_ns, cmd_id)
        if isinstance(outcome, Rejected):
            key = f"{type(command).__name__}:{outcome.code}"
            counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


def run_mix(mix: list[tuple[object, int]]) -> tuple[float, list[float], int]:
    """Execute the mix into a fresh state: seconds, per-1000-command µs, events emitted
    (every event takes a seq, so the last seq counts them)."""
    state = State(default_config())
    batch_us: list[float] = []
    clock = time.perf_counter
    gc.collect()
    gc.disable()
    try:
        started = clock()
        for first in range(0, len(mix), 1_000):
            batch = mix[first:first + 1_000]
            batch_started = clock()
            for cmd_id, (command, ts_ns) in enumerate(batch, first + 1):
                execute(state, command, ts_ns, cmd_id)
            batch_us.append((clock() - batch_started) * 1e6 / len(batch))
        elapsed = clock() - started
    finally:
        gc.enable()
    return elapsed, batch_us, state.last_seq


def command_us_by_type(mix: list[tuple[object, int]]) -> dict[str, float]:
    """Mean µs per command type over one more run of the mix, each command timed alone
    (so a little above what the whole-run figure implies: the clock is read per command)."""
    state = State(default_config())
    total_s: dict[str, float] = {}
    count: dict[str, int] = {}
    clock = time.perf_counter
    gc.collect()
    gc.disable()
    try:
        for cmd_id, (command, ts_ns) in enumerate(mix, 1):
            started = clock()
            execute(state, command, ts_ns, cmd_id)
            elapsed = clock() - started
            name = type(command).__name__
            total_s[name] = total_s.get(name, 0.0) + elapsed
            count[name] = count.get(name, 0) + 1
    finally:
        gc.enable()
    return {name: total_s[name] / count[name] * 1e6 for name in sorted(total_s)}


# -- the kernels ----------------------------------------------------------------------------


def random_positions(n: int, seed: int = SEED) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    size = rng.integers(10, 1_000_000, n) * 1_000_000
    leverage = rng.integers(1, 21, n)
    return {
        "status": np.ones(n, np.int8), "market": np.zeros(n, np.int16), "size_e6": size, "size_open_e6": size.copy(),
        "entry_price_e8": (rng.normal(100_000, 2_000, n) * 1e8).astype(np.int64),
        "margin_long_e6": size // leverage, "margin_short_e6": size // 10,
        "margin_open_long_e6": size // leverage, "margin_open_short_e6": size // 10,
        "rate_e9": rng.integers(-5_000_000, 5_000_000, n), "taker_is_long": rng.integers(0, 2, n).astype(np.int8),
        "last_funding_ns": START_NS + rng.integers(0, 8 * 3_600 * NS_PER_S, n),
    }


def time_sweep(kernel, p: dict, repeats: int) -> list[float]:
    n = len(p["status"])
    out = sweep_outputs(n)
    timings = []
    for i in range(repeats):
        started = time.perf_counter()
        kernel(p["status"], p["market"], p["size_e6"], p["size_open_e6"], p["entry_price_e8"], p["margin_long_e6"],
               p["margin_short_e6"], p["margin_open_long_e6"], p["margin_open_short_e6"], n, 0,
               (95_000 + i) * 10**8, 5_000, *out)
        timings.append((time.perf_counter() - started) * 1e3)
    return timings


def time_funding(kernel, p: dict, repeats: int) -> list[float]:
    n = len(p["status"])
    rows, amounts = np.empty(n, np.int64), np.empty(n, np.int64)
    boundary_ns = START_NS + 8 * 3_600 * NS_PER_S
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        kernel(p["status"], p["size_e6"], p["rate_e9"], p["taker_is_long"], p["margin_long_e6"], p["margin_short_e6"],
               p["last_funding_ns"], n, boundary_ns, rows, amounts)
        timings.append((time.perf_counter() - started) * 1e3)
    return timings


_WORKER = """
import sys
from ledger import compiled; compiled.prepare()
import benchmarks.engine as b
mix = b.build_mix(int(sys.argv[1]))
b.run_mix(mix[: len(mix) // 10])
print("ready", compiled.engine_is_compiled(), flush=True)
for line in sys.stdin:
    print(b.run_mix(mix)[0], flush=True)
"""


class InterpretedWorker:
    """The mix on the interpreted engine, in a process of its own (``AGENTPERP_ENGINE=python``;
    the kernels stay compiled by numba), one run per ``run()``: its commands/s."""

    def __init__(self, n_rounds: int, n_commands: int):
        env = dict(os.environ, AGENTPERP_ENGINE="python")
        self.n_commands = n_commands
        self.process = subprocess.Popen([sys.executable, "-c", _WORKER, str(n_rounds)], env=env, text=True,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        ready = self.process.stdout.readline().split()
        if not ready or ready[0] != "ready":
            self.close()
            raise RuntimeError("the interpreted engine worker did not start")
        assert ready[1] == "False", "the worker runs the compiled engine: AGENTPERP_ENGINE=python was ignored"

    def run(self) -> float:
        self.process.stdin.write("run\n")
        self.process.stdin.flush()
        return self.n_commands / float(self.process.stdout.readline())

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        self.process.wait(60)


_RSS_PROBE = """
import json, sys
from ledger import compiled; compiled.prepare()
import benchmarks.engine as b
print(json.dumps(b.open_positions_rss(int(sys.argv[1]))))
"""


def open_positions_rss(n_positions: int) -> dict:
    """Open ``n_positions`` (RFQ, one quote, accept; longs and shorts in turn) in a fresh
    state; the RSS they add (VmRSS after the agents are funded, and after), in KB."""
    state = State(default_config())
    traders = [f"trader{i:04d}" for i in range(1_000)]
    makers = [f"maker{i:03d}" for i in range(100)]
    now_ns = START_NS
    cmd_id = 0

    def run(command):
        nonlocal cmd_id, now_ns
        cmd_id += 1
        now_ns += 1_000
        return execute(state, command, now_ns, cmd_id)

    for agent in traders + makers:
        run(cmd.Deposit(agent, 100_000_000 * 1_000_000, f"seed-{agent}"))
    prices_e8 = [100_000 * 10**8, 4_000 * 10**8, 200 * 10**8]
    for market, price_e8 in enumerate(prices_e8):
        run(cmd.OracleUpdate(market, price_e8, price_e8 // 10_000, now_ns, "bench"))
    gc.collect()
    before_kb = _rss_kb()
    rejected = 0
    for i in range(n_positions):
        if i % 10_000 == 9_999:  # keep the prices fresh
            for market, price_e8 in enumerate(prices_e8):
                run(cmd.OracleUpdate(market, price_e8, price_e8 // 10_000, now_ns, "bench"))
        trader, maker = traders[i % len(traders)], makers[i % len(makers)]
        opened = run(cmd.RequestQuote(trader, i % 3, "long" if i % 2 else "short", 10_000_000, 10, 10_000_000,
                                      "perpetual", 60_000))
        if isinstance(opened, Rejected):
            rejected += 1
            continue
        rfq_id = opened[0].rfq_id
        run(cmd.SubmitQuote(maker, rfq_id, 1_000_000, 2_000_000, 60_000))
        if isinstance(run(cmd.AcceptQuote(trader, rfq_id, cmd.BEST_QUOTE, "sig")), Rejected):
            rejected += 1
    gc.collect()
    return {"positions": len(state.position_row), "rejected": rejected, "before_kb": before_kb,
            "after_kb": _rss_kb()}


def _rss_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def engine_rss_per_1m_positions(n_positions: int) -> dict:
    done = subprocess.run([sys.executable, "-c", _RSS_PROBE, str(n_positions)], capture_output=True, text=True,
                          timeout=1_800)
    if done.returncode != 0:
        return {"memory.engine_error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    probe = json.loads(done.stdout.strip().splitlines()[-1])
    added_mb = (probe["after_kb"] - probe["before_kb"]) / 1024
    return {"memory.engine_rss_mb_per_1m_positions": added_mb * 1e6 / max(probe["positions"], 1),
            "memory.engine_rss_added_mb": added_mb, "memory.engine_open_positions": probe["positions"],
            "memory.engine_rejected_opens": probe["rejected"]}


# -- the program ----------------------------------------------------------------------------


def kernel_scaling(counts: list[int], repeats: int = 5) -> dict:
    """Median sweep and funding ms at each position count."""
    sweep, funding = [], []
    for n in counts:
        p = random_positions(n)
        time_sweep(sweep_market_nb, p, 1)
        time_funding(settle_funding_nb, p, 1)
        sweep.append(float(np.median(time_sweep(sweep_market_nb, p, repeats))))
        funding.append(float(np.median(time_funding(settle_funding_nb, p, repeats))))
    return {"positions": counts, "sweep_ms": sweep, "funding_ms": funding}


def measure(quick: bool = False, out_dir: Path | None = None) -> dict:
    from benchmarks import plots

    n_rounds = 2_000 if quick else 30_000
    n_positions = 100_000 if quick else 1_000_000
    memory_positions = 30_000 if quick else 200_000
    out_dir = Path(out_dir) if out_dir else Path(__file__).parent / "results"
    figures: dict = {"machine.cores": os.cpu_count(), "machine.python": platform.python_version(),
                     "engine.compiled": compiled.engine_is_compiled(), "seed": SEED, "engine.mix_rounds": n_rounds,
                     "kernels.positions": n_positions}

    mix = build_mix(n_rounds)  # also the JIT warm-up: every kernel has run by now
    run_mix(mix[: len(mix) // 10])
    figures["engine.commands"] = len(mix)
    figures["engine.mix_rejections"] = mix_outcomes(mix)  # how realistic the mix is: almost none
    runs: list[tuple[float, list[float], int]] = []

    def compiled_run() -> float:
        runs.append(run_mix(mix))
        return len(mix) / runs[-1][0]

    with one_cpu() as cpu:  # the worker, started here, shares the CPU the compiled runs use
        worker = InterpretedWorker(n_rounds, len(mix))
        try:
            ratio = interleave(compiled_run, worker.run, pairs=max(PAIRS_MIN, MIX_RUNS),
                               figure="engine.commands_per_s", baseline="engine.commands_per_s_interpreted",
                               label="engine compiled / interpreted")
        finally:
            worker.close()
    figures["engine.compiled_over_interpreted"] = ratio
    figures["engine.pinned_cpu"] = cpu
    elapsed, batch_us, events = sorted(runs, key=lambda run: run[0])[len(runs) // 2]
    figures["engine.commands_per_s"] = ratio["figure_spread"]["median"]
    figures["engine.commands_per_s_runs"] = [round(v) for v in ratio["figure_values"]]
    figures["engine.commands_per_s_interpreted"] = ratio["baseline_spread"]["median"]
    figures["engine.events_per_s"] = events / elapsed
    figures["engine.command_us"] = percentiles(batch_us)
    figures["engine.command_us_by_type"] = command_us_by_type(mix)

    p = random_positions(n_positions)
    time_sweep(sweep_market_nb, p, 2)
    time_funding(settle_funding_nb, p, 2)
    sweep_ms = time_sweep(sweep_market_nb, p, 30)
    funding_ms = time_funding(settle_funding_nb, p, 30)
    scale = 1_000_000 / n_positions
    figures["kernels.sweep_1m_ms"] = float(np.median(sweep_ms)) * scale
    figures["kernels.funding_1m_ms"] = float(np.median(funding_ms)) * scale
    figures["kernels.sweep_ms"] = percentiles(sweep_ms)
    figures["kernels.funding_ms"] = percentiles(funding_ms)

    # The twins are pure Python: time them on a tenth of the rows and scale linearly.
    twin_rows = max(n_positions // 10, 1_000)
    q = {k: v[:twin_rows] for k, v in p.items()}
    twin_scale = 1_000_000 / twin_rows
    figures["reference.sweep_1m_ms"] = float(np.median(time_sweep(reference.sweep_market, q, 3))) * twin_scale
    figures["reference.funding_1m_ms"] = float(np.median(time_funding(reference.settle_funding, q, 3))) * twin_scale
    figures["ratio.sweep_twin_over_kernel"] = figures["reference.sweep_1m_ms"] / figures["kernels.sweep_1m_ms"]
    figures["ratio.funding_twin_over_kernel"] = figures["reference.funding_1m_ms"] / figures["kernels.funding_1m_ms"]

    counts = [10_000, 30_000, 100_000, 300_000] if quick else [10_000, 100_000, 300_000, 1_000_000, 3_000_000]
    scaling = kernel_scaling(counts)
    figures["kernels.scaling"] = scaling
    figures["kernels.scaling_plot"] = str(plots.scaling(
        scaling["positions"], {"sweep (ms)": scaling["sweep_ms"], "funding (ms)": scaling["funding_ms"]},
        out_dir / "kernels_scaling.png", xlabel="open positions", ylabel="ms per pass",
        title="kernel time by open positions"))

    figures.update(engine_rss_per_1m_positions(memory_positions))
    return figures


def main(json_path: str | None = None, quick: bool = False) -> int:
    out_dir = Path(json_path).parent if json_path else None
    return emit(measure(quick, out_dir), TARGETS, json_path)
