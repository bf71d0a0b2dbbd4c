"""Ratios measured interleaved, and the machine's calibration.

This machine's speed drifts (a fixed loop took 0.94 s, then 1.76 s an hour later), so a
figure and the baseline it is divided by are measured in alternation — A B A B …, at least
``PAIRS_MIN`` pairs — and the ratio reported is the median of the pairwise ratios, with its
min and max: two runs next to each other see the same machine. The min–max spread is also
what `bench all --against` takes for noise.

A ratio is a dict in the figures (JSON-ready)::

    {"ratio": 0.41, "min": 0.37, "max": 0.47, "pairs": 5, "better": "higher",
     "figure": "replay.events_per_s", "baseline": "journal.read_events_per_s",
     "ratios": [...], "figure_values": [...], "baseline_values": [...],
     "figure_spread": {"median", "min", "max"}, "baseline_spread": {...}}
"""

from __future__ import annotations

import gc
import os
import statistics
import time
from contextlib import contextmanager
from typing import Callable, Iterator

PAIRS_MIN = 5
HIGHER, LOWER = "higher", "lower"  # which way a ratio is better


def spread(values: list[float]) -> dict[str, float]:
    """Median, min and max of ``values`` (non-empty)."""
    assert values, "a spread of no values"
    return {"median": float(statistics.median(values)), "min": float(min(values)), "max": float(max(values))}


def ratio_summary(figure_values: list[float], baseline_values: list[float], *, figure: str, baseline: str,
                  better: str = HIGHER) -> dict:
    """The ratio dict of pairwise ``figure_values[i] / baseline_values[i]``.

    Pairs whose baseline is 0 are left out of the ratios (a division by nothing measured).
    """
    assert len(figure_values) == len(baseline_values), "figure and baseline come in pairs"
    assert better in (HIGHER, LOWER), better
    ratios = [a / b for a, b in zip(figure_values, baseline_values) if b]
    if not ratios:
        return {"ratio": None, "min": None, "max": None, "pairs": 0, "better": better, "figure": figure,
                "baseline": baseline, "ratios": [], "figure_values": figure_values,
                "baseline_values": baseline_values}
    r = spread(ratios)
    return {"ratio": r["median"], "min": r["min"], "max": r["max"], "pairs": len(ratios), "better": better,
            "figure": figure, "baseline": baseline, "ratios": ratios,
            "figure_values": list(map(float, figure_values)), "baseline_values": list(map(float, baseline_values)),
            "figure_spread": spread(figure_values), "baseline_spread": spread(baseline_values)}


def interleave(run_figure: Callable[[], float], run_baseline: Callable[[], float], *, figure: str, baseline: str,
               pairs: int = PAIRS_MIN, better: str = HIGHER, label: str | None = None,
               between: Callable[[], None] | None = None) -> dict:
    """Run ``run_figure`` and ``run_baseline`` in alternation, ``pairs`` times each (figure
    first), each returning its value; the ratio dict (see the module docstring).

    ``between`` runs after every single run (e.g. let a server drain) and is not timed.
    A progress bar shows the pairs when ``label`` is given.
    """
    assert figure != baseline, figure  # the runs are keyed by name
    values = interleave_runs({figure: run_figure, baseline: run_baseline}, rounds=pairs, label=label,
                             between=between)
    return ratio_summary(values[figure], values[baseline], figure=figure, baseline=baseline, better=better)


def interleave_runs(runs: dict[str, Callable[[], float]], *, rounds: int = PAIRS_MIN, label: str | None = None,
                    between: Callable[[], None] | None = None) -> dict[str, list[float]]:
    """Each of ``runs`` once per round, in the order given, ``rounds`` rounds: the values of
    each by name, round by round (so the i-th values of any two were measured side by side:
    ``ratio_summary`` of any two lists). ``between`` and ``label`` as in ``interleave``."""
    assert rounds >= 1, rounds
    values: dict[str, list[float]] = {name: [] for name in runs}
    first, second = list(runs)[:2] if len(runs) > 1 else (None, None)
    bar = _bar(rounds, label)
    try:
        for _ in range(rounds):
            for name, run in runs.items():
                values[name].append(float(run()))
                if between:
                    between()
            if bar is not None:
                bar.set_postfix_str(f"ratio {values[first][-1] / values[second][-1]:.3g}"
                                    if first and values[second][-1] else "")
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return values


@contextmanager
def one_cpu() -> Iterator[int | None]:
    """Run this process, and the processes it starts meanwhile, on one CPU (yielded; None
    where affinity cannot be set), then on the CPUs it had.

    For a figure and a baseline measured in two processes (the engine's compiled mix here,
    the interpreted one in a worker): on a shared machine each CPU sees its own neighbours,
    and two processes free to move would often measure on different ones (one bench engine
    run saw its compiled runs fall 20% while the interpreted worker's rose). Pinned, each
    pair shares one CPU's conditions. The last CPU of the set: Linux steers most
    interrupts to the first.

    On the way out every thread of this process gets its CPUs back, not only the calling
    one (Linux pins threads one by one): a thread started while pinned — numba's OpenMP
    workers, created by the first parallel kernel call of the engine's mix — would otherwise
    stay on the one CPU, and the parallel kernels timed afterwards would run their threads
    on it (`bench engine`'s sweep measured 1.4 ms per 100 000 positions so, against 0.75
    with its workers free). A thread that was there before keeps the CPUs it had.
    """
    if not hasattr(os, "sched_setaffinity"):
        yield None
        return
    allowed = os.sched_getaffinity(0)
    before = _affinities()
    cpu = max(allowed)
    os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        for thread_id in _affinities():
            try:
                os.sched_setaffinity(thread_id, before.get(thread_id, allowed))
            except ProcessLookupError:  # the thread ended meanwhile
                pass


def _affinities() -> dict[int, set[int]]:
    """This process's threads (Linux: /proc/self/task; elsewhere the calling one, 0) and the
    CPUs each may run on; a thread that ends while they are read is left out."""
    try:
        thread_ids = [int(name) for name in os.listdir("/proc/self/task")]
    except FileNotFoundError:
        thread_ids = [0]
    found = {}
    for thread_id in thread_ids:
        try:
            found[thread_id] = os.sched_getaffinity(thread_id)
        except ProcessLookupError:
            pass
    return found


def _bar(total: int, label: str | None):
    if label is None:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=label, unit="round", leave=False)


# -- the machine's calibration ----------------------------------------------------------------

CALIBRATION_WORKLOAD = "integer hash chain and a 1 024-slot dict over 1 000 000 steps, pure Python"
CALIBRATION_RUNS = 5


def _calibration_workload() -> int:
    """A fixed pure-Python workload (interpreter speed: bytecode, ints, dict stores)."""
    total = 0
    slots: dict[int, int] = {}
    for i in range(1_000_000):
        total = (total * 31 + i) % 1_000_003
        slots[i & 1023] = total
    return total + len(slots)


def calibration(runs: int = CALIBRATION_RUNS) -> dict:
    """``machine.calibration``: the workload's seconds (median, min, max of ``runs``), GC off.

    Divide a previous run's calibration by this one's to compare absolute figures across
    machines or hours.
    """
    timings = []
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(runs):
            started = time.perf_counter()
            _calibration_workload()
            timings.append(time.perf_counter() - started)
    finally:
        if was_enabled:
            gc.enable()
    s = spread(timings)
    return {"median_s": s["median"], "min_s": s["min"], "max_s": s["max"], "runs": runs,
            "workload": CALIBRATION_WORKLOAD}


def is_ratio(value) -> bool:
    return isinstance(value, dict) and "ratio" in value and "better" in value
