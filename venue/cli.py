"""The `agentperp` command line: ops' entry point to the venue and its benchmark suites."""

from __future__ import annotations

import argparse
import sys

from venue import numba_cache

numba_cache.configure()  # before anything imports numba


def _run(args: argparse.Namespace) -> int:
    print("agentperp: the running venue (gateway, sequencer, demo agents) is not built yet.")
    print("What exists today is the engine core: try `agentperp bench engine`.")
    return 0


def _bench(args: argparse.Namespace) -> int:
    if args.suite == "engine":
        from benchmarks import engine as suite
    else:  # argparse's choices keep us here only for known suites
        raise AssertionError(args.suite)
    return suite.main(json_path=args.json, quick=args.quick)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agentperp", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="start the venue")
    run.set_defaults(func=_run)

    bench = commands.add_parser("bench", help="run a benchmark suite")
    bench.add_argument("suite", choices=["engine"])
    bench.add_argument("--json", metavar="FILE", help="also write the figures to FILE as JSON")
    bench.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    bench.set_defaults(func=_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
