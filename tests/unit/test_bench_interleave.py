"""The benchmark harness's pure parts: interleaving order, ratio statistics and CPU pinning (no timing)."""

import os
import subprocess
import sys
import threading

import pytest

from benchmarks.interleave import (HIGHER, LOWER, PAIRS_MIN, interleave, interleave_runs, is_ratio, one_cpu,
                                  ratio_summary, spread)


def test_runs_alternate_figure_first_for_every_pair():
    calls = []
    values = iter(range(1, 100))

    def figure():
        calls.append("A")
        return next(values)

    def baseline():
        calls.append("B")
        return next(values)

    interleave(figure, baseline, figure="f", baseline="b", pairs=5)
    assert calls == ["A", "B"] * 5


def test_between_runs_after_every_single_run():
    calls = []
    interleave(lambda: calls.append("A") or 1.0, lambda: calls.append("B") or 1.0, figure="f", baseline="b",
               pairs=2, between=lambda: calls.append("-"))
    assert calls == ["A", "-", "B", "-", "A", "-", "B", "-"]


def test_runs_take_turns_in_the_order_given_each_round():
    calls = []

    def run(name: str, value: float):
        return lambda: calls.append(name) or value

    values = interleave_runs({"a": run("a", 1.0), "b": run("b", 2.0), "c": run("c", 4.0)}, rounds=3,
                             between=lambda: calls.append("-"))
    assert calls == ["a", "-", "b", "-", "c", "-"] * 3
    assert values == {"a": [1.0] * 3, "b": [2.0] * 3, "c": [4.0] * 3}


def test_the_default_is_at_least_five_pairs():
    counted = []
    result = interleave(lambda: counted.append(1) or 2.0, lambda: 1.0, figure="f", baseline="b")
    assert PAIRS_MIN >= 5 and len(counted) == PAIRS_MIN and result["pairs"] == PAIRS_MIN


def test_ratio_is_the_median_of_pairwise_ratios_not_the_ratio_of_medians():
    # Drift: both halve in speed over the run; each pair sees the same machine.
    figure = [100.0, 80.0, 60.0, 40.0, 20.0]
    baseline = [200.0, 160.0, 120.0, 80.0, 40.0]
    r = ratio_summary(figure, baseline, figure="f", baseline="b")
    assert r["ratios"] == [0.5] * 5
    assert (r["ratio"], r["min"], r["max"]) == (0.5, 0.5, 0.5)
    assert r["figure_spread"] == {"median": 60.0, "min": 20.0, "max": 100.0}
    assert r["baseline_spread"] == {"median": 120.0, "min": 40.0, "max": 200.0}


def test_ratio_min_max_and_even_count_median():
    r = ratio_summary([1.0, 3.0, 2.0, 8.0], [1.0, 1.0, 1.0, 2.0], figure="f", baseline="b", better=LOWER)
    assert r["ratios"] == [1.0, 3.0, 2.0, 4.0]
    assert (r["ratio"], r["min"], r["max"], r["pairs"]) == (2.5, 1.0, 4.0, 4)
    assert r["better"] == LOWER and is_ratio(r)


def test_a_zero_baseline_pair_is_left_out():
    r = ratio_summary([1.0, 2.0], [0.0, 1.0], figure="f", baseline="b")
    assert r["ratios"] == [2.0] and r["pairs"] == 1
    nothing = ratio_summary([1.0], [0.0], figure="f", baseline="b")
    assert nothing["ratio"] is None and nothing["pairs"] == 0


def test_pairs_must_match_and_direction_must_be_known():
    with pytest.raises(AssertionError):
        ratio_summary([1.0], [1.0, 2.0], figure="f", baseline="b")
    with pytest.raises(AssertionError):
        ratio_summary([1.0], [1.0], figure="f", baseline="b", better="sideways")
    assert HIGHER != LOWER


def test_spread():
    assert spread([3.0, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0}


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this platform")
def test_one_cpu_pins_this_process_and_what_it_starts_then_restores():
    allowed = os.sched_getaffinity(0)
    with one_cpu() as cpu:
        assert os.sched_getaffinity(0) == {cpu} and cpu in allowed
        child = subprocess.run([sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"],
                               capture_output=True, text=True, check=True)
        assert child.stdout.strip() == f"[{cpu}]"  # the interpreted worker shares the CPU
    assert os.sched_getaffinity(0) == allowed


def _parked_thread(finish: threading.Event) -> tuple[threading.Thread, int]:
    """A started thread that waits for ``finish``; its native id (for its CPU affinity)."""
    started = threading.Event()
    native_id: list[int] = []

    def park():
        native_id.append(threading.get_native_id())
        started.set()
        finish.wait()

    thread = threading.Thread(target=park)
    thread.start()
    started.wait()
    return thread, native_id[0]


@pytest.mark.skipif(not os.path.isdir("/proc/self/task") or len(os.sched_getaffinity(0)) < 2,
                    reason="threads' affinity is read from /proc (Linux); two CPUs to tell them apart")
def test_one_cpu_gives_every_thread_its_cpus_back():
    allowed = os.sched_getaffinity(0)
    finish = threading.Event()
    older, older_id = _parked_thread(finish)
    own_cpus = {min(allowed)}  # a thread that had its own, narrower set before
    os.sched_setaffinity(older_id, own_cpus)
    newer = None
    try:
        with one_cpu() as cpu:
            # like numba's OpenMP workers: started under the pin, alive after it
            newer, newer_id = _parked_thread(finish)
            assert os.sched_getaffinity(newer_id) == {cpu}
        assert os.sched_getaffinity(newer_id) == allowed
        assert os.sched_getaffinity(older_id) == own_cpus
        assert os.sched_getaffinity(0) == allowed
    finally:
        finish.set()
        older.join()
        if newer is not None:
            newer.join()
