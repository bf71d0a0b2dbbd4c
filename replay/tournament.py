"""``tournament``: every strategy × parameter set × journal, backtested under the venue's own
ranking, side by side — on Dask distributed.

Each run is one ``replay.backtest.backtest`` (deterministic for a journal, strategy, seed and
parameters), so a run is a pure task: ``run_one(RunSpec)`` → a plain dict. Runs go to a Dask
``Client`` (a ``LocalCluster`` of ``workers`` processes by default, or ``scheduler=ADDRESS``);
``scheduler=None, in_process=True`` runs them one after the other here. Results are ordered
by run index, whatever finishes first, so the same tournament gives the same figures on
Dask and in-process (only ``seconds`` differs). Every worker prepares the engine
(``ledger.compiled.prepare()``, via ``replay.workers.PrepareEngine``) before a task imports
it, as the entry points do: a worker never runs a stale compiled engine.

Figures per run: PnL (venue + hedge), its venue leg (equity − deposit) and hedge leg (the
hedge's cost, funding and mark-to-market, for a strategy that hedges: ``replay.backtest``),
realized PnL, funding, fees, Sharpe, max drawdown, fill ratio (fills / quotes submitted),
fills, quotes. **Sharpe** is the mean over the standard deviation of the equity changes
between Ticks, times the square root of the number of such intervals in a year at the median
interval (0 when the equity never moved).

Strategies are ``module:Class`` or a short name of ``STRATEGIES`` (strings, not imports:
``replay`` may not import ``agents`` — DESIGN §2 — but a backtest loads a strategy by name
like ``replay backtest --strategy`` does). ``grid``: ``{PARAM: [v1, v2, ...]}``; the product
of all values is applied to every strategy as keyword arguments; ``NAME.PARAM`` applies to
that strategy only.
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from engine.markets import EngineConfig, default_config
from replay.errors import ReplayError

STRATEGIES = {
    "spread": "replay.strategies:SpreadMaker",
    "conservative": "agents.makers:ConservativeMaker",
    "balanced": "agents.makers:InventoryMaker",
    "aggressive": "agents.makers:AggressiveMaker",
    "swarm": "agents.swarm:SwarmMaker",
    "dynamic": "agents.dynamic:DynamicPricingMaker",
    "arbitrage": "agents.arbitrage:ArbitrageMaker",
}
SECONDS_PER_YEAR = 365.25 * 86_400
WORKERS_DEFAULT = 2
FIGURES = ("pnl_e6", "venue_pnl_e6", "hedge_pnl_e6", "hedge_cost_e6", "hedge_funding_e6", "realized_pnl_e6",
           "funding_e6", "fees_e6", "sharpe", "max_drawdown_e6", "fill_ratio", "fills", "quotes_submitted",
           "liquidated", "open_positions")


@dataclass(frozen=True)
class RunSpec:
    index: int
    journal: str
    name: str  # as given on the command line
    strategy: str  # module:Class
    params: dict
    seed: int
    deposit_e6: int
    config: EngineConfig | None = None


@dataclass
class TournamentResult:
    runs: list[dict]
    journals: list[str]
    strategies: list[str]
    grid: dict
    executor: str
    seconds: float
    figures: list[str] = field(default_factory=list)

    def to_dict(self, curves: bool = False) -> dict:
        out = asdict(self)
        if not curves:
            out["runs"] = [{k: v for k, v in run.items() if k not in ("equity_ns", "equity_e6")} for run in self.runs]
        return out


def parse_value(text: str):
    """``"3"`` -> 3, ``"0.5"`` -> 0.5, ``"true"`` -> True, anything else stays a string."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text.replace("_", ""))
        except ValueError:
            pass
    return text


def parse_grid(items: list[str]) -> dict[str, list]:
    grid: dict[str, list] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key or not values:
            raise ReplayError(f"--grid {item!r}: expected PARAM=v1,v2,...")
        grid[key.strip()] = [parse_value(v) for v in values.split(",")]
    return grid


def resolve(name: str) -> str:
    spec = STRATEGIES.get(name, name)
    if ":" not in spec:
        raise ReplayError(f"strategy {name!r}: not one of {', '.join(STRATEGIES)} and not module:Class")
    return spec


def plan(journals: list[str], strategies: list[str], grid: dict[str, list] | None = None, *, seed: int = 0,
         deposit_e6: int = 1_000_000 * 1_000_000, config: EngineConfig | None = None) -> list[RunSpec]:
    """Every (journal, strategy, parameter set) as a ``RunSpec``, in a fixed order."""
    grid = grid or {}
    keys = sorted(grid)
    combos = [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))] or [{}]
    specs, index = [], 0
    for journal in journals:
        for name in strategies:
            spec = resolve(name)
            seen = set()
            for combo in combos:
                params = {}
                for key, value in combo.items():
                    scope, dot, param = key.rpartition(".")
                    if not dot:
                        params[key] = value
                    elif scope == name:
                        params[param] = value
                frozen = tuple(sorted(params.items()))
                if frozen in seen:  # a grid scoped to another strategy repeats this one's set
                    continue
                seen.add(frozen)
                specs.append(RunSpec(index, str(journal), name, spec, params, seed, deposit_e6, config))
                index += 1
    return specs


def sharpe(equity_ns: list[int], equity_e6: list[int]) -> float:
    """Annualized Sharpe of the equity changes between samples (module docstring)."""
    changes = [b - a for a, b in zip(equity_e6, equity_e6[1:])]
    steps = [b - a for a, b in zip(equity_ns, equity_ns[1:]) if b > a]
    if len(changes) < 2 or not steps:
        return 0.0
    deviation = statistics.pstdev(changes)
    if deviation == 0:
        return 0.0
    per_year = SECONDS_PER_YEAR / (statistics.median(steps) / 1e9)
    return round(statistics.fmean(changes) / deviation * math.sqrt(per_year), 6)


def run_one(spec: RunSpec) -> dict:
    """One backtest of the tournament: a plain dict (picklable; what a Dask worker returns)."""
    import importlib

    from replay.backtest import backtest

    module_name, _, class_name = spec.strategy.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ReplayError(f"strategy {spec.name!r} ({spec.strategy}): {exc}") from None
    try:
        strategy = cls(seed=spec.seed, **spec.params)
    except TypeError as exc:
        raise ReplayError(f"strategy {spec.name!r} does not take {sorted(spec.params)}: {exc}") from None
    result = backtest(spec.journal, strategy, spec.config or default_config(), seed=spec.seed,
                      deposit_e6=spec.deposit_e6)
    out = {"index": spec.index, "journal": spec.journal, "name": spec.name, "strategy": spec.strategy,
           "params": spec.params, "seed": spec.seed}
    out.update(result.to_dict(curve=True))
    out.pop("strategy", None)
    out["strategy"] = spec.strategy
    out["fill_ratio"] = round(result.fills / result.quotes_submitted, 6) if result.quotes_submitted else 0.0
    out["sharpe"] = sharpe(result.equity_ns, result.equity_e6)
    explain = getattr(strategy, "explain", None)
    out["explain"] = explain() if explain is not None else None
    return out


def _bar(total: int, progress: bool | None):
    from tqdm import tqdm

    return tqdm(total=total, desc="tournament", unit="run", disable=(progress is False) or None, leave=False)


def run(specs: list[RunSpec], *, scheduler: str | None = None, in_process: bool = False,
        workers: int = WORKERS_DEFAULT, progress: bool | None = False) -> tuple[list[dict], str]:
    """Run every spec; the results in spec order and a description of where they ran."""
    results: dict[int, dict] = {}
    with _bar(len(specs), progress) as bar:
        if in_process:
            for spec in specs:
                results[spec.index] = run_one(spec)
                bar.update(1)
            return [results[s.index] for s in specs], "in-process"
        try:
            from distributed import as_completed
        except Exception as exc:  # e.g. toolz < 0.12 reinstalled for anchorpy: tlz fails on Python 3.11
            raise ReplayError(f"Dask distributed is not importable ({type(exc).__name__}: {exc}); "
                              "pip install 'dask[distributed]==2026.8.0' 'toolz>=0.12' or run --in-process") from None

        client, cluster, where = connect(scheduler, workers)
        try:
            futures = client.map(run_one, specs, pure=False)
            for future in as_completed(futures):
                result = future.result()
                results[result["index"]] = result
                bar.update(1)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    return [results[s.index] for s in specs], where


def connect(scheduler: str | None, workers: int = WORKERS_DEFAULT):
    """A Dask ``Client`` whose every worker prepared the engine (``replay.workers``): to
    ``scheduler``, or to a new ``LocalCluster`` of ``workers`` processes (returned too, to
    close); and a description of where tasks run."""
    from distributed import Client, LocalCluster

    from replay.workers import PrepareEngine

    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=40)
        where = f"LocalCluster ({workers} worker processes)"
    else:
        where = f"scheduler {scheduler}"
    client = Client(cluster if cluster is not None else scheduler)
    try:
        client.register_plugin(PrepareEngine())  # on every worker now, and on any that joins, before a task
    except BaseException:
        client.close()
        if cluster is not None:
            cluster.close()
        raise
    return client, cluster, where


def tournament(journals: list[str], strategies: list[str], grid: dict[str, list] | None = None, *, seed: int = 0,
               deposit_e6: int = 1_000_000 * 1_000_000, config: EngineConfig | None = None,
               scheduler: str | None = None, in_process: bool = False, workers: int = WORKERS_DEFAULT,
               out: Path | str | None = None, progress: bool | None = False) -> TournamentResult:
    """Plan, run, and (with ``out``) write ``tournament.json``, ``equity.png``, ``pnl.png``."""
    if not journals or not strategies:
        raise ReplayError("a tournament needs at least one journal and one strategy")
    specs = plan(journals, strategies, grid, seed=seed, deposit_e6=deposit_e6, config=config)
    started = time.perf_counter()
    runs, where = run(specs, scheduler=scheduler, in_process=in_process, workers=workers, progress=progress)
    result = TournamentResult(runs, [str(j) for j in journals], list(strategies), grid or {}, where,
                              time.perf_counter() - started)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        result.figures = [str(plot_equity(result, out / "equity.png")), str(plot_pnl(result, out / "pnl.png"))]
        (out / "tournament.json").write_text(to_json(result) + "\n")
    return result


def journal_name(journal: str) -> str:
    path = Path(journal)
    return path.parent.name if path.name == "journal" else path.name


def label(run: dict) -> str:
    params = ",".join(f"{k}={v}" for k, v in sorted(run["params"].items()))
    return f"{run['name']}({params})" if params else run["name"]


def figures(run: dict) -> dict:
    """The figures compared between executors (no timing)."""
    return {k: run[k] for k in ("index", "journal", "name", "params", "seed", *FIGURES)}


def _linear_ticks(ax, *, x: bool = True) -> None:
    """Evenly spaced ticks over the data's range (LinearLocator), not matplotlib's default
    AutoLocator: in the full test run its tick search failed with "arange: cannot compute
    length" on ordinary limits, a failure we could not reproduce alone; plain linspace ticks
    have no such search."""
    from matplotlib.ticker import LinearLocator

    if x:
        ax.xaxis.set_major_locator(LinearLocator(6))
    ax.yaxis.set_major_locator(LinearLocator(6))


def plot_equity(result: TournamentResult, path: Path) -> Path:
    """Equity curves (PnL in USDC over venue time), one panel per journal."""
    import datetime as dt

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    journals = result.journals
    fig, axes = plt.subplots(len(journals), 1, figsize=(10, 3.2 * len(journals)), dpi=100, squeeze=False)
    for ax, journal in zip(axes[:, 0], journals):
        runs = [r for r in result.runs if r["journal"] == str(journal)]
        start_ns = min((r["equity_ns"][0] for r in runs if r["equity_ns"]), default=0)
        for run in runs:
            hours = [(ns - start_ns) / 3.6e12 for ns in run["equity_ns"]]
            ax.plot(hours, [(v - run["deposit_e6"]) / 1e6 for v in run["equity_e6"]], linewidth=1, label=label(run))
        ax.axhline(0, color="grey", linewidth=0.5)
        start = dt.datetime.fromtimestamp(start_ns / 1e9, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        ax.set_title(journal_name(journal), fontsize=9)
        ax.set_xlabel(f"hours since {start}")
        ax.set_ylabel("PnL (USDC)")
        _linear_ticks(ax)
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return path


def plot_pnl(result: TournamentResult, path: Path) -> Path:
    """PnL distribution per strategy (over journals and parameter sets): a box plot with the points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r["name"] for r in result.runs))
    data = [[r["pnl_e6"] / 1e6 for r in result.runs if r["name"] == name] for name in names]
    fig, ax = plt.subplots(figsize=(max(5, 1.5 * len(names)), 4), dpi=100)
    ax.boxplot(data, tick_labels=names)
    for i, values in enumerate(data, start=1):
        ax.scatter([i] * len(values), values, s=10, alpha=0.6)
    ax.axhline(0, color="grey", linewidth=0.5)
    ax.set_ylabel("PnL (USDC)")
    ax.set_title("PnL per run, by strategy", fontsize=9)
    _linear_ticks(ax, x=False)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return path


def format_table(result: TournamentResult) -> str:
    header = (f"{'run':<40} {'journal':<16} {'venue PnL':>14} {'hedge PnL':>12} {'PnL':>14} {'funding':>12} "
              f"{'fees':>10} {'Sharpe':>8} {'max DD':>14} {'fill%':>6} {'fills':>6}")
    lines = [header, "-" * len(header)]
    for r in sorted(result.runs, key=lambda r: -r["pnl_e6"]):
        lines.append(f"{label(r)[:40]:<40} {journal_name(r['journal'])[:16]:<16} "
                     f"{r['venue_pnl_e6'] / 1e6:>14,.2f} {r['hedge_pnl_e6'] / 1e6:>12,.2f} "
                     f"{r['pnl_e6'] / 1e6:>14,.2f} {r['funding_e6'] / 1e6:>12,.2f} {r['fees_e6'] / 1e6:>10,.2f} "
                     f"{r['sharpe']:>8.2f} {r['max_drawdown_e6'] / 1e6:>14,.2f} {100 * r['fill_ratio']:>5.1f}% "
                     f"{r['fills']:>6,}")
    lines.append(f"{len(result.runs)} runs on {result.executor} in {result.seconds:.2f} s "
                 f"({len(result.runs) / result.seconds:.2f} runs/s); amounts in USDC")
    if result.figures:
        lines.append("figures: " + ", ".join(result.figures))
    return "\n".join(lines)


def to_json(result: TournamentResult) -> str:
    return json.dumps(result.to_dict(), indent=1, default=str)
