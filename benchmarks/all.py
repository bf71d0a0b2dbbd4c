"""`agentperp bench all --report DIR [--against PREV_DIR] [--quick]`: every suite in one run,
one report for ops.

Each suite runs in a process of its own (``agentperp bench SUITE --json DIR/SUITE.json``:
no JIT, page cache or heap state carried from one suite to the next, and a suite that fails
does not stop the others); its table goes to ``DIR/SUITE.log``, its plots next to its JSON.
The machine's calibration is measured before and after the whole run. Then:

- ``DIR/report.json``: ``{"machine": …, "suites": {suite: figures}, "targets": …}``;
- ``DIR/report.md`` and ``DIR/report.html``: the targets of issue 17 as ratios, each suite's
  figures, the plots (latency CDFs, throughput over time, kernel scaling, the interleaved
  pairs of every ratio), and with ``--against PREV_DIR`` the comparison with that report:
  a ratio whose min–max spread no longer overlaps the previous one's is flagged
  (``benchmarks.compare``).

Exit status: 0; 1 if a suite failed or a ratio regressed beyond noise.
"""

from __future__ import annotations

import datetime as dt
import html
import importlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import compare, plots
from benchmarks.interleave import calibration, is_ratio
from benchmarks.report import show, target_met

SUITES = ("engine", "journal", "replay", "gateway", "projections", "oracle", "hedging", "escrow", "tournament",
          "dashboard")
SUITE_TIMEOUT_S = 3_600  # a suite still running after this long is stopped and reported failed


def run_suite(suite: str, report_dir: Path, quick: bool) -> dict:
    """Run one suite in its own process; its figures, or ``{"error": …}``."""
    json_path = report_dir / f"{suite}.json"
    json_path.unlink(missing_ok=True)
    command = [sys.executable, "-m", "venue.cli", "bench", suite, "--json", str(json_path)] + (["--quick"] * quick)
    started = time.perf_counter()
    with open(report_dir / f"{suite}.log", "w") as log:
        try:
            done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT if not sys.stderr.isatty() else None,
                                  timeout=SUITE_TIMEOUT_S)
            code = done.returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
    seconds = time.perf_counter() - started
    if code != 0 or not json_path.exists():
        return {"error": f"exit {code} after {seconds:.0f} s; see {suite}.log", "suite.seconds": seconds}
    figures = json.loads(json_path.read_text())
    figures["suite.seconds"] = seconds
    return figures


def suite_targets(suite: str) -> dict:
    from venue.cli import BENCH_SUITES

    try:
        return dict(getattr(importlib.import_module(BENCH_SUITES[suite]), "TARGETS", {}))
    except Exception as error:  # a suite that cannot even be imported: its run says why
        return {"error": str(error)}


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, timeout=10).stdout.strip()
    except OSError:
        return ""


def run_all(report_dir: Path, quick: bool, suites: tuple[str, ...] = SUITES) -> dict:
    from tqdm import tqdm

    report_dir.mkdir(parents=True, exist_ok=True)
    report: dict = {"created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "quick": quick,
                    "command": " ".join(["agentperp", *sys.argv[1:]]) if sys.argv else "",
                    "machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                                "platform": platform.platform(), "commit": git_commit(),
                                "calibration": calibration()},
                    "suites": {}, "targets": {}}
    bar = tqdm(suites, desc="bench all", unit="suite")
    for suite in bar:
        bar.set_postfix_str(suite)
        report["suites"][suite] = run_suite(suite, report_dir, quick)
        report["targets"][suite] = suite_targets(suite)
        if "error" in report["suites"][suite]:
            tqdm.write(f"{suite}: {report['suites'][suite]['error']}")
    report["machine"]["calibration_end"] = calibration()
    return report


# -- the report -------------------------------------------------------------------------------
# A report is a list of blocks, rendered to Markdown and to HTML alike:
# ("h1" | "h2" | "p", text), ("table", headers, rows), ("img", relative path, caption).


def blocks(report: dict, previous: dict | None, report_dir: Path) -> list[tuple]:
    out: list[tuple] = [("h1", "agentperp benchmarks")]
    m = report["machine"]
    cal, cal_end = m["calibration"], m.get("calibration_end", m["calibration"])
    out.append(("p", f"{report['created']} · commit {m.get('commit') or '?'} · {m['cores']} cores · Python "
                     f"{m['python']} · {'quick mode' if report['quick'] else 'full mode'} · `{report['command']}`"))
    out.append(("p", f"machine.calibration ({cal['workload']}): {cal['median_s']:.3f} s "
                     f"[{cal['min_s']:.3f} – {cal['max_s']:.3f}] before the run, {cal_end['median_s']:.3f} s "
                     f"[{cal_end['min_s']:.3f} – {cal_end['max_s']:.3f}] after. Every figure below names its "
                     "baseline; ratios are medians of figure/baseline pairs measured in alternation, "
                     "with their min – max."))

    rows = []
    ratios: dict[str, dict] = {}
    for suite, figures in report["suites"].items():
        targets = report["targets"].get(suite, {})
        for key, value in figures.items():
            if not is_ratio(value):
                continue
            ratios[key] = value
            target = targets.get(key)
            met = target_met(value, target) if target else None
            rows.append([suite, key, _num(value["ratio"]), f"{_num(value['min'])} – {_num(value['max'])}",
                         str(value["pairs"]), f"{value['figure']} / {value['baseline']}",
                         f"{target[0]} {target[1]:g}" if target else "",
                         "" if target is None else ("not measured" if met is None else "met" if met else "MISSED")])
    out.append(("h2", "Ratios (the targets of issue 17)"))
    out.append(("table", ["suite", "ratio", "median", "min – max", "pairs", "figure / baseline", "target", ""],
                rows))
    failed = [(suite, f["error"]) for suite, f in report["suites"].items() if "error" in f]
    if failed:
        out.append(("p", "Failed suites: " + "; ".join(f"{s}: {e}" for s, e in failed)))

    if previous is not None:
        out += comparison_blocks(previous, report)

    if ratios:
        path = plots.ratio_pairs(ratios, report_dir / "ratio_pairs.png")
        out.append(("img", path.name, "every interleaved ratio, pair by pair (over its median)"))
    for suite, figures in report["suites"].items():
        out.append(("h2", f"{suite}" + (f" ({figures['suite.seconds']:.0f} s)" if "suite.seconds" in figures else "")))
        targets = report["targets"].get(suite, {})
        table_rows = []
        for key, value in figures.items():
            if is_ratio(value) or key in ("suite.seconds",) or key.endswith(("plot", "plots")):
                continue
            target = targets.get(key)
            met = target_met(value, target) if target else None
            table_rows.append([key, show(value), f"{target[0]} {target[1]:g}" if target else "",
                               "" if target is None else ("not measured" if met is None else "met" if met else "MISSED")])
        out.append(("table", ["figure", "value", "target", ""], table_rows))
        for image in _plots_of(figures, report_dir):
            out.append(("img", image, image))
    return out


def comparison_blocks(previous: dict, current: dict) -> list[tuple]:
    out: list[tuple] = [("h2", f"Compared with the report of {previous.get('created', '?')} "
                               f"(commit {previous.get('machine', {}).get('commit', '?')})")]
    changes = compare.compare_ratios(previous, current)
    flagged = compare.regressions(changes)
    factor = compare.calibration_factor(previous, current)
    out.append(("p", f"{len(flagged)} ratio(s) regressed beyond noise (this run's min – max spread entirely on "
                     "the worse side of the previous one's). "
                     + (f"Calibration: this machine ran the fixed workload {factor:.2f}× as long as the "
                        "previous one." if factor else "")))
    out.append(("table", ["ratio", "previous [min – max]", "now [min – max]", "better", "verdict"],
                [[c.key, _spread(c.previous), _spread(c.current), (c.current or c.previous or {}).get("better", ""),
                  f"**{c.verdict}**" if c.verdict == compare.REGRESSED else c.verdict] for c in changes]))
    rows = [[key, _num(was), _num(now), "" if scaled is None else f"{scaled:+.1%}"]
            for key, was, now, scaled in compare.compare_absolute(previous, current)]
    out.append(("p", "Absolute figures, for information (not flagged: their noise is not measured); the change "
                     "is scaled by the calibration (rates × factor, times ÷ factor)."))
    out.append(("table", ["figure", "previous", "now", "change (calibrated)"], rows))
    return out


def _plots_of(figures: dict, report_dir: Path) -> list[str]:
    paths = []
    for key, value in figures.items():
        if key.endswith("plot") and isinstance(value, str):
            paths.append(value)
        elif key.endswith("plots") and isinstance(value, list):
            paths += [v for v in value if isinstance(v, str)]
    found = []
    for p in paths:
        p = Path(p)
        if p.exists():
            found.append(os.path.relpath(p, report_dir))
    return found


def _num(value) -> str:
    if value is None:
        return "—"
    return f"{value:,.3g}" if abs(value) < 1_000 else f"{value:,.0f}"


def _spread(r: dict | None) -> str:
    if not r or r.get("ratio") is None:
        return "—"
    return f"{_num(r['ratio'])} [{_num(r['min'])} – {_num(r['max'])}]"


def to_markdown(report_blocks: list[tuple]) -> str:
    lines: list[str] = []
    for block in report_blocks:
        kind = block[0]
        if kind == "h1":
            lines += [f"# {block[1]}", ""]
        elif kind == "h2":
            lines += [f"## {block[1]}", ""]
        elif kind == "p":
            lines += [block[1], ""]
        elif kind == "table":
            headers, rows = block[1], block[2]
            lines.append("| " + " | ".join(headers) + " |")
            lines.append("|" + "---|" * len(headers))
            lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
            lines.append("")
        elif kind == "img":
            lines += [f"![{block[2]}]({block[1]})", ""]
    return "\n".join(lines)


def to_html(report_blocks: list[tuple]) -> str:
    e = html.escape
    parts = ["<!doctype html><meta charset='utf-8'><title>agentperp benchmarks</title><style>"
             "body{font:14px system-ui,sans-serif;margin:2em;max-width:1200px}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
             "text-align:left}td:nth-child(n+2){font-variant-numeric:tabular-nums}"
             "img{max-width:100%;display:block;margin:1em 0}</style>"]
    for block in report_blocks:
        kind = block[0]
        if kind in ("h1", "h2"):
            parts.append(f"<{kind}>{e(block[1])}</{kind}>")
        elif kind == "p":
            parts.append(f"<p>{e(block[1])}</p>")
        elif kind == "table":
            parts.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in block[1]) + "</tr>")
            for row in block[2]:
                cells = []
                for c in row:
                    c = str(c)
                    if c.startswith("**") and c.endswith("**"):
                        cells.append(f"<td><b style='color:#b00'>{e(c[2:-2])}</b></td>")
                    elif c == "MISSED":
                        cells.append(f"<td style='color:#b00'>{e(c)}</td>")
                    else:
                        cells.append(f"<td>{e(c)}</td>")
                parts.append("<tr>" + "".join(cells) + "</tr>")
            parts.append("</table>")
        elif kind == "img":
            parts.append(f"<figure><img src='{e(block[1])}' alt='{e(block[2])}'><figcaption>{e(block[2])}"
                         "</figcaption></figure>")
    return "\n".join(parts) + "\n"


def write_report(report: dict, report_dir: Path, previous: dict | None) -> list[tuple]:
    (report_dir / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    report_blocks = blocks(report, previous, report_dir)
    (report_dir / "report.md").write_text(to_markdown(report_blocks))
    (report_dir / "report.html").write_text(to_html(report_blocks))
    return report_blocks


def main(report_dir: str, against: str | None = None, quick: bool = False,
         suites: tuple[str, ...] = SUITES) -> int:
    report_dir_path = Path(report_dir)
    previous = None
    if against:
        previous_path = Path(against) / "report.json"
        if not previous_path.exists():
            print(f"agentperp bench all: no report.json in {against}", file=sys.stderr)
            return 2
        previous = json.loads(previous_path.read_text())
    report = run_all(report_dir_path, quick, suites)
    write_report(report, report_dir_path, previous)
    for suite, figures in report["suites"].items():
        print(f"{suite:10} " + ("FAILED: " + figures["error"] if "error" in figures else
                                f"{figures.get('suite.seconds', 0):.0f} s"))
    regressed = compare.regressions(compare.compare_ratios(previous, report)) if previous else []
    for change in regressed:
        print(f"REGRESSED beyond noise: {change.key}: {_spread(change.previous)} -> {_spread(change.current)}")
    print(f"wrote {report_dir_path / 'report.md'} and {report_dir_path / 'report.html'}")
    failed = any("error" in f for f in report["suites"].values())
    return 1 if failed or regressed else 0
