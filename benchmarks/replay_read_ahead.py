"""verify reading ahead in a second process against verify in one, interleaved (a developer's
A/B of ``ReplayJournal.event_runs(read_ahead=...)``; `bench replay` reports both figures).

    python -m benchmarks.replay_read_ahead DATA_DIR [--rounds 9] [--json FILE]

Per round, one verify each way on the same journal (a data directory, e.g. written by
`agentperp journal generate`); reported: the pairwise ratio of events/s (read-ahead / one
process), and the CPU per event of this process alone and with the reader's (its child).
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
from pathlib import Path

from benchmarks.interleave import interleave_runs, ratio_summary, spread
from replay import generate
from replay.verify import verify


def _cpu_s(children: bool) -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    total = own.ru_utime + own.ru_stime
    if children:
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        total += kids.ru_utime + kids.ru_stime
    return total


def measure(data_dir: Path, rounds: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:  # JIT and decoders warm, in this process
        generate.generate(Path(tmp) / "warm", 3_000, progress=False)
        verify(Path(tmp) / "warm", read_ahead=False)
    cpu: dict = {"read_ahead": ([], []), "one_process": ([], [])}  # (this process, with the reader)

    def run(read_ahead: bool) -> float:
        own, both = _cpu_s(False), _cpu_s(True)
        result = verify(data_dir, read_ahead=read_ahead, use_snapshots=False)  # one pass, either way
        assert result.ok, result.divergence
        mine, all_ = cpu["read_ahead" if read_ahead else "one_process"]
        mine.append((_cpu_s(False) - own) / result.events * 1e6)
        all_.append((_cpu_s(True) - both) / result.events * 1e6)
        return result.events_per_s

    values = interleave_runs({"read_ahead": lambda: run(True), "one_process": lambda: run(False)}, rounds=rounds,
                             label="verify: read-ahead / one process")
    out = {"events_per_s_ratio": ratio_summary(values["read_ahead"], values["one_process"],
                                               figure="read_ahead_events_per_s", baseline="one_process_events_per_s")}
    for name, (mine, all_) in cpu.items():
        out[f"{name}.cpu_us_per_event_this_process"] = spread(mine)
        out[f"{name}.cpu_us_per_event_with_reader"] = spread(all_)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    figures = measure(args.data_dir, args.rounds)
    print(json.dumps(figures, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
