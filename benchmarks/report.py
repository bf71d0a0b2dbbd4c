"""What every benchmark program shares: percentiles, a table with targets, JSON output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

Targets = dict[str, tuple[str, float]]  # figure -> (">=" | "<=", bound)


def percentiles(values) -> dict[str, float]:
    a = np.asarray(values, dtype=float)
    return {"p50": float(np.percentile(a, 50)), "p99": float(np.percentile(a, 99)), "max": float(a.max())}


def table(figures: dict, targets: Targets) -> str:
    """The figures as text, each target marked met or MISSED."""
    lines = [f"{'figure':40} {'value':>16}  target"]
    for key, value in figures.items():
        if isinstance(value, dict):
            lines.append(f"{key:40} " + "  ".join(f"{k} {v:,.2f}" for k, v in value.items()))
            continue
        mark = ""
        if key in targets and value is not None:
            op, bound = targets[key]
            met = value >= bound if op == ">=" else value <= bound
            mark = f"{op} {bound:,}  {'met' if met else 'MISSED'}"
        shown = f"{value:,.2f}" if isinstance(value, float) else str(value)
        lines.append(f"{key:40} {shown:>16}  {mark}")
    return "\n".join(lines)


def emit(figures: dict, targets: Targets, json_path: str | None) -> int:
    """Print the table; write the figures as JSON to ``json_path`` if given."""
    print(table(figures, targets))
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(figures, indent=2) + "\n")
        print(f"wrote {json_path}")
    return 0
