"""Compare two `bench all` reports: ratios flagged when they moved beyond noise.

Noise is the min–max spread of each interleaved ratio (``benchmarks.interleave``): a ratio
has *regressed* only when this run's whole spread lies on the worse side of the previous
run's whole spread (no overlap); *improved* likewise on the better side; otherwise it is
*within noise*. Absolute figures are shown with their change, scaled by the two runs'
``machine.calibration`` so that a slower machine is not read as a regression, but they are
never flagged: their noise is not measured.
"""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.interleave import HIGHER, is_ratio

REGRESSED, IMPROVED, NOISE, NEW, GONE = "REGRESSED", "improved", "within noise", "new", "gone"


@dataclass(frozen=True)
class Change:
    key: str
    verdict: str  # one of REGRESSED, IMPROVED, NOISE, NEW, GONE
    previous: dict | None  # the previous ratio dict
    current: dict | None


def verdict(previous: dict, current: dict) -> str:
    """REGRESSED / IMPROVED when the two min–max spreads do not overlap, else NOISE."""
    if previous.get("ratio") is None or current.get("ratio") is None:
        return NEW if previous.get("ratio") is None else GONE
    higher_is_better = current.get("better", HIGHER) == HIGHER
    if current["max"] < previous["min"]:
        return REGRESSED if higher_is_better else IMPROVED
    if current["min"] > previous["max"]:
        return IMPROVED if higher_is_better else REGRESSED
    return NOISE


def ratios_of(report: dict) -> dict[str, dict]:
    """Every ratio in a report (``{suite: {figure: value}}``), keyed by figure."""
    return {key: value for figures in report.get("suites", {}).values() if isinstance(figures, dict)
            for key, value in figures.items() if is_ratio(value)}


def compare_ratios(previous: dict, current: dict) -> list[Change]:
    """One Change per ratio in either report, in the current report's order."""
    before, after = ratios_of(previous), ratios_of(current)
    changes = []
    for key, value in after.items():
        changes.append(Change(key, verdict(before[key], value) if key in before else NEW, before.get(key), value))
    changes += [Change(key, GONE, value, None) for key, value in before.items() if key not in after]
    return changes


def calibration_factor(previous: dict, current: dict) -> float | None:
    """How much slower this machine ran the calibration than the previous one (> 1: slower)."""
    try:
        return current["machine"]["calibration"]["median_s"] / previous["machine"]["calibration"]["median_s"]
    except (KeyError, TypeError, ZeroDivisionError):
        return None


def compare_absolute(previous: dict, current: dict) -> list[tuple[str, float, float, float | None]]:
    """``(figure, previous, current, change scaled by calibration)`` for every plain number
    in both reports. The scaled change first puts the current figure on the previous
    machine's speed: a rate (``*_per_s``) is multiplied by the calibration factor, a time
    (``*_ms``, ``*_s``, ``*seconds*``) divided by it; other figures are not scaled."""
    factor = calibration_factor(previous, current)
    rows = []
    for suite, figures in current.get("suites", {}).items():
        old = previous.get("suites", {}).get(suite, {})
        if not isinstance(figures, dict) or not isinstance(old, dict):
            continue
        for key, value in figures.items():
            was = old.get(key)
            if _number(value) and _number(was) and not key.startswith("machine."):
                scaled = None
                if factor and was:
                    if "_per_s" in key:
                        scaled = (value * factor - was) / abs(was)
                    elif key.endswith(("_ms", "_s")) or "seconds" in key:
                        scaled = (value / factor - was) / abs(was)
                    else:
                        scaled = (value - was) / abs(was)
                rows.append((key, float(was), float(value), scaled))
    return rows


def regressions(changes: list[Change]) -> list[Change]:
    return [c for c in changes if c.verdict == REGRESSED]


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
