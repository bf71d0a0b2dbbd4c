"""The benchmarks' plots (matplotlib, Agg): latency CDFs, throughput over time, scaling, and
the interleaved pairs of every ratio. Each function writes one PNG and returns its path."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def latency_cdf(series_ms: dict[str, np.ndarray], path: Path, title: str) -> Path:
    """One CDF per series on a log latency axis, and the tail by quantile (p90 … p99.9)."""
    plt = _pyplot()
    fig, (cdf, tail) = plt.subplots(1, 2, figsize=(11, 4))
    for label, ms in series_ms.items():
        ms = np.sort(np.asarray(ms, dtype=float))
        if not len(ms):
            continue
        cdf.plot(np.maximum(ms, 1e-3), np.arange(1, len(ms) + 1) / len(ms), label=f"{label} ({len(ms):,})")
        quantiles = np.linspace(0, 0.9999, 2000)
        tail.plot(1 / (1 - quantiles), np.quantile(ms, quantiles), label=label)
    cdf.set_xscale("log")
    cdf.set_xlabel("latency (ms, log)")
    cdf.set_ylabel("fraction of commands")
    cdf.set_title(title)
    cdf.legend(fontsize=8)
    tail.set_xscale("log")
    tail.set_yscale("log")
    tail.set_xlabel("1 / (1 - quantile)  (10 = p90, 100 = p99, 1000 = p99.9)")
    tail.set_ylabel("ms (log)")
    tail.set_title("latency by quantile")
    for q in (0.5, 0.99, 0.999):
        tail.axvline(1 / (1 - q), color="grey", lw=0.5)
    tail.legend(fontsize=8)
    return _save(fig, plt, path)


def throughput_over_time(series: dict[str, np.ndarray], bin_s: float, path: Path, title: str) -> Path:
    """Answers per second in bins of ``bin_s`` over each run."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(11, 3.5))
    for label, counts in series.items():
        counts = np.asarray(counts, dtype=float)
        ax.plot(np.arange(len(counts)) * bin_s, counts / bin_s, label=label, drawstyle="steps-post")
    ax.set_xlabel("seconds into the run")
    ax.set_ylabel("commands/s")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return _save(fig, plt, path)


def scaling(xs, series: dict[str, list[float]], path: Path, *, xlabel: str, ylabel: str, title: str) -> Path:
    """``series`` against ``xs`` on log-log axes (kernel time against open positions)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, ys in series.items():
        ax.plot(xs, ys, marker="o", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", lw=0.3)
    ax.legend(fontsize=8)
    return _save(fig, plt, path)


def ratio_pairs(ratios: dict[str, dict], path: Path) -> Path:
    """Each interleaved ratio's pairwise values by pair, normalised to its median: drift
    within a run shows as a slope, noise as scatter."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 4))
    for key, r in ratios.items():
        if r.get("ratio"):
            ax.plot(range(1, len(r["ratios"]) + 1), np.asarray(r["ratios"]) / r["ratio"], marker="o", label=key)
    ax.axhline(1.0, color="grey", lw=0.5)
    ax.set_xlabel("pair (A B in alternation)")
    ax.set_ylabel("pairwise ratio / median")
    ax.set_title("interleaved ratios, pair by pair")
    ax.legend(fontsize=7)
    return _save(fig, plt, path)


def _save(fig, plt, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
