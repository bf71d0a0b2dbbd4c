"""Two (or more) venues against each other and the echo, interleaved: the before/after
measurement of a gateway or sequencer change (a developer's tool; `bench gateway` is the
figure ops read).

Each variant is a source tree (``ROOT``, e.g. an export of the commit before the change,
with its compiled engine) and optional `agentperp run` flags. All servers run at once;
each pair runs every server in turn with the same load generators as `bench gateway`
(throughput, then open-loop latency at ``--offered-per-s``), each run starting once every
venue's projections have caught up (as in `bench gateway`), so each pair sees the same
machine. Printed and written as JSON: every value, and the median of the pairwise ratios
with min and max — each variant to the echo, and each later variant to the first — for
throughput, the server's own CPU per answered command in the throughput runs (its threads
and child processes; steadier than throughput while others load the machine), and the p99.

    python -m benchmarks.gateway_ab --pairs 5 --offered-per-s 5000 \\
        before=/tmp/before after=. bare=.:--no-sql,--settlement,none
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import gateway as g
from benchmarks.interleave import HIGHER, LOWER, ratio_summary

PROCESSES, AGENTS_PER_PROCESS = 2, 8  # as `bench gateway` (full mode)


def _variant(spec: str) -> tuple[str, Path, tuple[str, ...]]:
    name, _, rest = spec.partition("=")
    root, _, flags = rest.partition(":")
    return name, Path(root).resolve(), tuple(f for f in flags.split(",") if f)


def _pause(servers: dict) -> None:
    """As `bench gateway` between runs: settle, then every venue's projections caught up."""
    time.sleep(g.SETTLE_S)
    for server in servers.values():
        if isinstance(server, g.VenueProcess):
            server.wait_idle()


def measure(variants: list[str], pairs: int, throughput_s: float, latency_s: float, offered_per_s: float) -> dict:
    values = {"throughput": {}, "cpu_us_per_command": {}, "p99_ms": {}, "p50_ms": {}}
    with tempfile.TemporaryDirectory(prefix="agentperp-gateway-ab-") as tmp:
        servers: dict = {}
        try:
            servers["echo"] = g.EchoProcess()
            for i, spec in enumerate(variants):
                name, root, flags = _variant(spec)
                servers[name] = g.VenueProcess(Path(tmp) / f"data{i}", root=root, flags=flags)
                servers[name].fund(PROCESSES * AGENTS_PER_PROCESS)
            for server in servers.values():  # warm-up
                g._run_clients(server.tcp_port, PROCESSES, AGENTS_PER_PROCESS, "throughput", 0, 1.0,
                               g.WINDOW_PER_AGENT)
            _pause(servers)
            for kind in values:
                values[kind] = {name: [] for name in servers}
            for pair in range(pairs):
                for name, server in servers.items():
                    before = g.server_cpu_s(server.process.pid)
                    run = g._run_clients(server.tcp_port, PROCESSES, AGENTS_PER_PROCESS, "throughput", 0,
                                         throughput_s, g.WINDOW_PER_AGENT)
                    values["throughput"][name].append(run["answered"] / run["elapsed_s"])
                    # The server's own CPU per command (its threads and child processes, until its
                    # projections caught up; not the load generators'): steadier than throughput
                    # on a machine others share.
                    cpu = g.cpu_us_per_command(before, g.caught_up_cpu_s(server), 0.0, run["answered"])
                    values["cpu_us_per_command"][name].append(cpu["total"])
                    _pause(servers)
                time.sleep(g.RFQ_LIFETIME_MS / 1_000)
                _pause(servers)
                for name, server in servers.items():
                    run = g._run_clients(server.tcp_port, PROCESSES, AGENTS_PER_PROCESS, "latency", offered_per_s,
                                         latency_s, 0)
                    values["p99_ms"][name].append(float(np.percentile(run["latencies_s"], 99)) * 1e3)
                    values["p50_ms"][name].append(float(np.percentile(run["latencies_s"], 50)) * 1e3)
                    _pause(servers)
                print(f"pair {pair + 1}/{pairs}:",
                      {k: {n: round(v[-1], 2) for n, v in d.items()} for k, d in values.items()}, flush=True)
        finally:
            for server in servers.values():
                server.stop()
    names = list(values["throughput"])
    ratios = {}
    for kind, better in (("throughput", HIGHER), ("cpu_us_per_command", LOWER), ("p99_ms", LOWER)):
        for name in names[1:]:
            ratios[f"{kind}.{name}/echo"] = ratio_summary(values[kind][name], values[kind]["echo"], figure=name,
                                                          baseline="echo", better=better)
        for name in names[2:]:
            ratios[f"{kind}.{name}/{names[1]}"] = ratio_summary(values[kind][name], values[kind][names[1]],
                                                                figure=name, baseline=names[1], better=better)
    return {"values": values, "ratios": ratios, "offered_per_s": offered_per_s, "pairs": pairs,
            "throughput_run_s": throughput_s, "latency_run_s": latency_s, "variants": variants}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gateway_ab", description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", nargs="+", metavar="NAME=ROOT[:FLAG,FLAG]")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--throughput-s", type=float, default=2.0)
    parser.add_argument("--latency-s", type=float, default=3.0)
    parser.add_argument("--offered-per-s", type=float, default=5_000)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)
    result = measure(args.variants, args.pairs, args.throughput_s, args.latency_s, args.offered_per_s)
    for label, r in result["ratios"].items():
        print(f"{label:32s} {r['ratio']:.3f} [{r['min']:.3f} – {r['max']:.3f}]  "
              f"figure median {r['figure_spread']['median']:,.2f}  baseline median {r['baseline_spread']['median']:,.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
