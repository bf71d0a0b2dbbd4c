"""What every benchmark program shares: percentiles, a table with targets, JSON output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from benchmarks.interleave import calibration, is_ratio

Targets = dict[str, tuple[str, float]]  # figure -> (">=" | "<=", bound); a ratio's bound is on its median


def percentiles(values) -> dict[str, float]:
    a = np.asarray(values, dtype=float)
    return {"p50": float(np.percentile(a, 50)), "p99": float(np.percentile(a, 99)), "max": float(a.max())}


def target_met(value, target: tuple[str, float]) -> bool | None:
    """Whether ``value`` (a number or a ratio dict: its median) meets ``target``; None if
    nothing was measured."""
    if is_ratio(value):
        value = value["ratio"]
    if value is None or isinstance(value, (dict, list, str, bool)):
        return None
    op, bound = target
    return value >= bound if op == ">=" else value <= bound


def show(value) -> str:
    """A figure as text: a ratio as ``median [min – max] ×N pairs``."""
    if is_ratio(value):
        if value["ratio"] is None:
            return "not measured"
        return f"{value['ratio']:,.3g} [{value['min']:,.3g} – {value['max']:,.3g}] over {value['pairs']} pairs"
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, dict):
        return "  ".join(f"{k} {show(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "[" + ", ".join(show(v) for v in value[:12]) + (", …]" if len(value) > 12 else "]")
    return str(value)


def table(figures: dict, targets: Targets) -> str:
    """The figures as text, each target marked met or MISSED."""
    lines = [f"{'figure':44} {'value':>16}  target"]
    for key, value in figures.items():
        mark = ""
        if key in targets:
            met = target_met(value, targets[key])
            op, bound = targets[key]
            mark = f"{op} {bound:,}  " + ("not measured" if met is None else "met" if met else "MISSED")
        if is_ratio(value):
            lines.append(f"{key:44} {show(value)}  {mark}  ({value['figure']} / {value['baseline']})")
        elif isinstance(value, (dict, list)):
            lines.append(f"{key:44} {show(value)}")
        else:
            lines.append(f"{key:44} {show(value):>16}  {mark}")
    return "\n".join(lines)


def stamp(figures: dict) -> dict:
    """Add ``machine.calibration`` (a fixed pure-Python workload's time) to ``figures``."""
    figures.setdefault("machine.calibration", calibration())
    return figures


def emit(figures: dict, targets: Targets, json_path: str | None) -> int:
    """Print the table; write the figures as JSON to ``json_path`` if given."""
    stamp(figures)
    print(table(figures, targets))
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(figures, indent=2, default=str) + "\n")
        print(f"wrote {json_path}")
    return 0
