"""Two (or more) source trees' `replay verify` against each other, interleaved: the
before/after measurement of a replay or engine change (a developer's tool; `bench replay`
is the figure ops read).

Each variant is a source tree (``ROOT``, e.g. an export of the commit before the change,
with its compiled engine and kernels copied or built in it). Each pair runs every tree in
turn, each in a fresh process, as `agentperp replay verify` runs (its read-ahead process
when that pays): imports, a warm-up verify of a small journal and one of the journal in one
process (kernels, page cache), then ``--verifies`` verifies whose median events/s is the
run's figure. Printed and written as JSON: every value, and the median of the pairwise
ratios of each later tree to the first, with min and max. A data directory with snapshots is
verified in stretches by a tree that has them (session 20), as the CLI does; to compare one
pass with one pass, give the journal/ folder itself (no snapshots beside it).

    git archive HEAD~1 | tar -x -C /tmp/before   # then copy (or build) its .so files
    python -m benchmarks.replay_ab DATA_DIR --pairs 5 before=/tmp/before after=.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.interleave import HIGHER, ratio_summary

WARM_EVENTS = 3_000  # the warm-up journal: kernels and decoders loaded before the figure
RUN_TIMEOUT_S = 600

# Run in each variant's tree (its sources first on the path): the median events/s of its verifies.
_PROBE = r"""
import json, statistics, sys
root, journal, warm, verifies = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
sys.path.insert(0, root)
from ledger import compiled; compiled.prepare()
from replay.verify import verify
verify(warm)
verify(journal, read_ahead=False)
results = [verify(journal) for _ in range(verifies)]
assert all(r.ok for r in results), results[0].divergence
print(json.dumps({"events_per_s": statistics.median(r.events_per_s for r in results),
                  "events": results[0].events}))
"""


def _variant(spec: str) -> tuple[str, Path]:
    name, _, root = spec.partition("=")
    return name, Path(root).resolve()


def _run(root: Path, journal: Path, warm: Path, verifies: int) -> float:
    done = subprocess.run([sys.executable, "-c", _PROBE, str(root), str(journal), str(warm), str(verifies)],
                          cwd=root, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    if done.returncode != 0:
        raise RuntimeError(f"verify in {root} failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["events_per_s"]


def measure(journal: Path, variants: list[str], pairs: int, verifies: int) -> dict:
    from replay import generate  # this tree's generator: the warm-up journal reads in every tree
    trees = dict(_variant(spec) for spec in variants)
    values: dict[str, list[float]] = {name: [] for name in trees}
    with tempfile.TemporaryDirectory(prefix="agentperp-replay-ab-") as tmp:
        warm = Path(tmp) / "warm"
        generate.generate(warm, WARM_EVENTS, progress=False)
        for pair in range(pairs):
            for name, root in trees.items():
                values[name].append(_run(root, journal, warm, verifies))
            print(f"pair {pair + 1}/{pairs}:", {name: round(v[-1]) for name, v in values.items()}, flush=True)
    names = list(trees)
    ratios = {f"{name}/{names[0]}": ratio_summary(values[name], values[names[0]], figure=name, baseline=names[0],
                                                  better=HIGHER) for name in names[1:]}
    return {"journal": str(journal), "values": values, "ratios": ratios, "pairs": pairs, "verifies": verifies,
            "variants": variants}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.replay_ab", description=__doc__.split("\n\n")[0])
    parser.add_argument("journal", type=Path, help="a data directory (e.g. from `agentperp journal generate`)")
    parser.add_argument("variants", nargs="+", metavar="NAME=ROOT")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--verifies", type=int, default=5, help="verifies per run (their median is the run's figure)")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)
    if len(args.variants) < 2:
        parser.error("give two trees or more: NAME=ROOT NAME=ROOT ...")
    result = measure(args.journal.resolve(), args.variants, args.pairs, args.verifies)
    for label, r in result["ratios"].items():
        print(f"{label:24s} {r['ratio']:.3f} [{r['min']:.3f} – {r['max']:.3f}]  "
              f"figure median {r['figure_spread']['median']:,.0f}  baseline median {r['baseline_spread']['median']:,.0f}"
              " events/s")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
