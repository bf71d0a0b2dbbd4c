"""A Tick's work, bounded (``EngineConfig.tick_events_max``): expiries in bulk, sliced.

``python -m benchmarks.tick [--due N] [--pairs P] [--json FILE]``

One trader's ``N`` RFQs (seeded lifetimes of 1.0–1.5 s) all fall due at once; the engine's
Ticks (compiled when fresh, as the venue runs them) expire them, as the sequencer drives
them: another Tick at once while the last one stopped at the bound. Each pair times the
bounded world (the venue's default for a new journal, ``venue.config.TICK_EVENTS_MAX_NEW_JOURNAL``) and the
unbounded one (0, what journals before the bound hold) in alternation, each on a freshly
built state (not timed). Figures: the longest single Tick — how long the commands behind
it wait — and all the Ticks together (what the slicing costs), each bounded / unbounded,
the median of the pairwise ratios with min and max; the bounded slices' p50 and p99.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.interleave import LOWER, PAIRS_MIN, ratio_summary
from benchmarks.report import stamp
from ledger import compiled

T0_NS = 1_767_225_600_000_000_000
SEED = 17
DUE_DEFAULT = 40_000


def _world(tick_events_max: int, due: int):
    from engine import commands as cmd
    from engine.core import execute
    from engine.markets import default_config
    from engine.state import State

    state = State(default_config(tick_events_max=tick_events_max, open_rfqs_per_agent_max=max(due, 1)))
    lifetimes_ms = np.random.default_rng(SEED).integers(1_000, 1_500, due)
    commands = [cmd.Deposit("trader", 10**15, "funds"), cmd.OracleUpdate(0, 65_000 * 10**8, 10**8, T0_NS, "bench")]
    commands += [cmd.RequestQuote("trader", 0, "long", 10 * 10**6, 10, 10_000_000, expires_in_ms=int(ms))
                 for ms in lifetimes_ms]
    for cmd_id, command in enumerate(commands, start=2):
        execute(state, command, T0_NS + cmd_id, cmd_id)
    return state


def _ticks_s(state) -> list[float]:
    """Each Tick's seconds, Ticks at one instant until one ends below the bound (or the first
    when unbounded), as ``venue.sequencer`` injects them."""
    from engine import commands as cmd
    from engine.core import execute, tick_stopped_at_bound

    at_ns, seconds = T0_NS + 2 * 10**9, []
    while True:
        started = time.perf_counter()
        events = execute(state, cmd.Tick(), at_ns + len(seconds), 10**9 + len(seconds))
        seconds.append(time.perf_counter() - started)
        if not tick_stopped_at_bound(state.config, events):
            assert not state.rfqs, "a Tick below its bound left RFQs due"
            return seconds


def measure(due: int = DUE_DEFAULT, pairs: int = PAIRS_MIN) -> dict:
    from venue.config import TICK_EVENTS_MAX_NEW_JOURNAL as bound

    compiled.prepare()
    _ticks_s(_world(bound, min(due, 1_000)))  # warm-up
    longest = {"bounded": [], "unbounded": []}
    total = {"bounded": [], "unbounded": []}
    slices: list[float] = []
    for _ in range(pairs):
        for name, events_max in (("bounded", bound), ("unbounded", 0)):
            seconds = _ticks_s(_world(events_max, due))
            longest[name].append(max(seconds) * 1e3)
            total[name].append(sum(seconds) * 1e3)
            if name == "bounded":
                slices += seconds
    ms = np.array(slices) * 1e3
    return {
        "tick.due_rfqs": due, "tick.events_max": bound, "tick.bounded_ticks": len(slices) // pairs,
        "tick.longest_ms": ratio_summary(longest["bounded"], longest["unbounded"], figure="bounded",
                                         baseline="unbounded", better=LOWER),
        "tick.all_ms": ratio_summary(total["bounded"], total["unbounded"], figure="bounded", baseline="unbounded",
                                     better=LOWER),
        "tick.bounded_slice_ms": {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)),
                                  "max": float(ms.max())},
    }


def main(argv: list[str] | None = None) -> int:
    import json
    from pathlib import Path

    parser = argparse.ArgumentParser(prog="python -m benchmarks.tick", description=__doc__.split("\n\n")[0])
    parser.add_argument("--due", type=int, default=DUE_DEFAULT, help="RFQs due at once")
    parser.add_argument("--pairs", type=int, default=PAIRS_MIN)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)
    figures = stamp(measure(args.due, args.pairs))
    for key in ("tick.longest_ms", "tick.all_ms"):
        r = figures[key]
        print(f"{key:18} bounded/unbounded {r['ratio']:.3f} [{r['min']:.3f} – {r['max']:.3f}]  "
              f"bounded {r['figure_spread']['median']:.2f} ms, unbounded {r['baseline_spread']['median']:.2f} ms")
    print(f"{args.due:,} RFQs due: {figures['tick.bounded_ticks']} Ticks of at most {figures['tick.events_max']} "
          f"events; slices p50 {figures['tick.bounded_slice_ms']['p50']:.3f} ms, "
          f"p99 {figures['tick.bounded_slice_ms']['p99']:.3f}, max {figures['tick.bounded_slice_ms']['max']:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
