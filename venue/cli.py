"""The `agentperp` command line: ops' entry point to the venue, its journal, the escrow
program and the benchmark suites."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tomllib

from ledger import compiled

compiled.prepare()  # before anything imports numba

EXIT_BROKEN_PIPE = 141  # as a shell reports a command ended by SIGPIPE (128 + 13)

BENCH_SUITES = {
    "engine": "benchmarks.engine",
    "journal": "benchmarks.journal",
    "escrow": "benchmarks.escrow_cu",
    "replay": "benchmarks.replay",
    "gateway": "benchmarks.gateway",
    "oracle": "benchmarks.oracle",
    "hedging": "benchmarks.hedging",
    "projections": "benchmarks.projections",
    "tournament": "benchmarks.tournament",
    "dashboard": "benchmarks.dashboard",
}


def _run(args: argparse.Namespace) -> int:
    from venue import config, run

    try:
        settings = config.load(args.config, overrides=_run_overrides(args))
    except (config.ConfigError, OSError, tomllib.TOMLDecodeError) as error:
        print(f"agentperp run: {error}", file=sys.stderr)
        return 2
    if settings.venue.demo:
        settings.venue.dev = True  # the demo run is a dev run: its faucet and oracle helpers are on
    return run.main(settings)


def _run_overrides(args: argparse.Namespace) -> dict:
    """CLI flags, the last word over the file and the environment."""
    venue: dict = {}
    gateway: dict = {}
    if args.data is not None:
        venue["data_dir"] = args.data
    if args.port is not None:
        gateway["tcp_port"] = args.port
    if args.http_port is not None:
        gateway["http_port"] = args.http_port
    if args.duration is not None:
        venue["duration_s"] = args.duration
    if args.no_demo:
        venue["demo"] = False
    if args.dev:
        venue["dev"] = True
    overrides = {"venue": venue, "gateway": gateway}
    projections: dict = {}
    if args.sql is not None:
        projections["sql_url"] = args.sql
    if args.no_sql:
        projections["sql"] = False
    if args.nats is not None:
        projections["nats_url"] = args.nats
    if projections:
        overrides["projections"] = projections
    if args.oracle is not None:
        overrides["oracle"] = {"source": args.oracle}
    if args.no_hedging:
        overrides["hedging"] = {"enabled": "off"}
    settlement: dict = {}  # issue 13: the escrow, live
    if args.settlement_config is not None:  # its [settlement] table, e.g. the one `escrow rpc-peer` writes
        with open(args.settlement_config, "rb") as file:
            settlement = dict(tomllib.load(file).get("settlement", {}))
    settlement.update((k, v) for k, v in (("backend", args.settlement), ("rpc_url", args.rpc_url)) if v is not None)
    if settlement:
        overrides["settlement"] = settlement
    return overrides


def _oracle(args: argparse.Namespace) -> int:
    from venue import oracle

    return oracle.record_main(args)


def _config(args: argparse.Namespace) -> int:
    from venue import config

    print(config.defaults_toml())
    return 0


def _bench(args: argparse.Namespace) -> int:
    if args.suite == "all":
        bench_all = importlib.import_module("benchmarks.all")  # by name: venue never imports benchmarks

        if not args.report:
            print("agentperp bench all: --report DIR is required", file=sys.stderr)
            return 2
        suites = tuple(args.suites.split(",")) if args.suites else bench_all.SUITES
        unknown = [s for s in suites if s not in BENCH_SUITES]
        if unknown:
            print(f"agentperp bench all: unknown suite(s) {', '.join(unknown)}", file=sys.stderr)
            return 2
        return bench_all.main(args.report, against=args.against, quick=args.quick, suites=suites)
    suite = importlib.import_module(BENCH_SUITES[args.suite])
    return suite.main(json_path=args.json, quick=args.quick)


def _journal(args: argparse.Namespace) -> int:
    from ledger import inspect
    from ledger.records import decode_record

    if args.action == "generate":
        from replay import generate

        return generate.main(args.rest)  # "generate --events N DIR": everything after the action
    if len(args.rest) != 1:
        print(f"usage: agentperp journal {args.action} DIR", file=sys.stderr)
        return 2
    directory = args.rest[0]
    if args.action == "info":
        print(inspect.format_info(inspect.info(directory)))
        return 0
    result = inspect.check(directory, decode=decode_record)
    print(inspect.format_check(result))
    return 0 if result.ok else 1


def _escrow(args: argparse.Namespace) -> int:
    if args.action == "reconcile":
        from adapters.solana import reconcile
        from venue import settlement

        return reconcile.main(args.rest, idl=settlement.escrow_idl(), litesvm_backend=settlement.litesvm_backend)
    if args.action == "emergency-close":
        from adapters.solana import emergency
        from agents.sdk import demo_keypair
        from venue import settlement
        from venue.config import DemoSection

        return emergency.main(args.rest, idl=settlement.escrow_idl(), program_id=settlement.escrow_program().program_id,
                              litesvm_backend=settlement.litesvm_backend, demo_keypair=demo_keypair,
                              demo_seed=DemoSection().seed)
    if args.action == "rpc-peer":
        from adapters.solana import rpc_peer
        from adapters.solana.backend_litesvm import oracle_key
        from programs.escrow import localnet
        from solders.litesvm import LiteSVM
        from venue import settlement
        from venue.config import DEFAULT_SYMBOLS

        oracles = {symbol: oracle_key(market) for market, symbol in enumerate(DEFAULT_SYMBOLS[:len(localnet.FEEDS)])}
        return rpc_peer.main(args.rest, program_id=localnet.PROGRAM_ID, oracle_accounts=oracles,
                             make_world=lambda: localnet.World(settlement.program_path(),
                                                               svm=LiteSVM().with_sigverify(True)))
    from programs.escrow import build

    return build.main(args.rest)


# Subcommands that hand their arguments to another module's CLI: name -> ("module:function", help).
DELEGATED = {
    "exchange-sim": ("adapters.hedging.cli:exchange_sim",
                     "serve a simulated exchange (--exchange binanceusdm|okx) for the hedger's demos"),
    "hedge": ("adapters.hedging.cli:hedge", "the hedging projection: status, keys add|list|remove"),
    "projections": ("ledger.projections.cli:main", "the journal's projections: status, rebuild"),
    "stream": ("adapters.stream.cli:main", "the journal on NATS JetStream: publish, project"),
    "replay": ("replay.cli:main", "quants' toolkit: verify, state, export, whatif, backtest"),
}


def _delegate(args: argparse.Namespace) -> int:
    module, function = DELEGATED[args.command][0].split(":")
    return getattr(importlib.import_module(module), function)(args.rest)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agentperp", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="start the venue (by default with demo agents and dev helpers)")
    run.add_argument("--config", metavar="FILE", help="a TOML file (see `agentperp config`); env AGENTPERP_* "
                                                       "and these flags override it")
    run.add_argument("--data", metavar="DIR", help="data directory: journal and snapshots (default ./data)")
    run.add_argument("--port", type=int, metavar="N", help="TCP port for agents (default 7400; 0: any free)")
    run.add_argument("--http-port", type=int, metavar="N", help="HTTP/WebSocket port (default 7401)")
    run.add_argument("--no-demo", action="store_true", help="no demo agents, and no dev helpers unless --dev")
    run.add_argument("--dev", action="store_true", help="enable the unsigned /dev/faucet and /dev/oracle helpers")
    run.add_argument("--oracle", metavar="PRIMARY[,CHECK]",
                     help="price source: pyth | ccxt | recorded | synthetic (default) | none (prices only from "
                          "OracleUpdate senders); PRIMARY,CHECK (e.g. pyth,ccxt): a stale or diverging "
                          "primary is dropped for the check (docs/oracle.md)")
    run.add_argument("--duration", type=float, metavar="SECONDS", help="stop by itself after this long")
    run.add_argument("--sql", metavar="URL", help="SQL read models' database (default: SQLite file "
                                                  "DATA/read_model.sqlite; e.g. postgresql+psycopg://...)")
    run.add_argument("--no-sql", action="store_true", help="do not run the SQL read models")
    run.add_argument("--no-hedging", action="store_true", help="do not hedge the makers' exposure on the "
                                                                   "exchanges (default: on with the demo agents)")
    run.add_argument("--settlement", choices=["litesvm", "rpc", "none"],
                     help="the escrow program, live: litesvm (default: in-process chain), rpc (a cluster), none")
    run.add_argument("--rpc-url", metavar="URL", help="--settlement rpc: the cluster's JSON-RPC URL")
    run.add_argument("--settlement-config", metavar="FILE",
                     help="take [settlement] from FILE over --config's (e.g. the settlement.toml that "
                          "`agentperp escrow rpc-peer` writes)")
    run.add_argument("--nats", metavar="URL", help="also publish the journal to NATS JetStream (e.g. nats://127.0.0.1:4222)")
    run.set_defaults(func=_run)

    oracle = commands.add_parser("oracle", help="price sources: record one to a file (replay it with "
                                                "--oracle recorded)")
    oracle_actions = oracle.add_subparsers(dest="action", required=True)
    record = oracle_actions.add_parser("record", help="write a source's prices as JSON Lines (docs/oracle.md)")
    record.add_argument("--source", required=True, choices=["synthetic", "pyth", "ccxt", "recorded"])
    record.add_argument("--out", required=True, metavar="FILE")
    record.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this long (default: Ctrl-C)")
    record.add_argument("--config", metavar="FILE", help="the venue's TOML file: markets, feed ids, Hermes URL")
    record.set_defaults(func=_oracle)

    show = commands.add_parser("config", help="print every setting with its default, as TOML")
    show.set_defaults(func=_config)

    bench = commands.add_parser("bench", help="run a benchmark suite, or all of them into one report "
                                              "(docs/benchmarks.md)")
    bench.add_argument("suite", choices=sorted(BENCH_SUITES) + ["all"])
    bench.add_argument("--json", metavar="FILE", help="also write the figures to FILE as JSON")
    bench.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    bench.add_argument("--report", metavar="DIR", help="all: write report.{md,html,json}, each suite's JSON, "
                                                       "log and plots to DIR")
    bench.add_argument("--against", metavar="PREV_DIR", help="all: compare with the report in PREV_DIR; "
                                                             "ratios that regressed beyond noise are flagged")
    bench.add_argument("--suites", metavar="A,B", help="all: only these suites (default: every one)")
    bench.set_defaults(func=_bench)

    journal = commands.add_parser("journal", help="inspect a journal directory")
    journal.add_argument("action", choices=["info", "check", "generate"],
                         help="info: segments, ranges, sizes, snapshots; check: full crc and decode pass; "
                              "generate: write a seeded synthetic journal (see generate --help)")
    journal.add_argument("rest", nargs=argparse.REMAINDER, metavar="DIR ...",
                         help="the journal directory (e.g. data/journal); generate: its options too")
    journal.set_defaults(func=_journal)

    escrow = commands.add_parser("escrow", help="the Solana escrow program")
    escrow.add_argument("action", choices=["build", "reconcile", "rpc-peer", "emergency-close"],
                        help="build: compile and link the program (build/escrow/); reconcile: compare every "
                             "on-chain agent and position balance with the engine's; rpc-peer: serve the program in "
                             "LiteSVM as a Solana JSON-RPC node (for --settlement rpc); emergency-close: the escape "
                             "hatch, one party closes a position alone after the program's delay")
    escrow.add_argument("rest", nargs=argparse.REMAINDER, help="the action's options (see ACTION --help)")
    escrow.set_defaults(func=_escrow)

    for name, (_, help_text) in DELEGATED.items():  # they parse their own options
        delegated = commands.add_parser(name, help=help_text, add_help=False)
        delegated.add_argument("rest", nargs=argparse.REMAINDER, help=f"see `agentperp {name} --help`")
        delegated.set_defaults(func=_delegate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args, unknown = build_parser().parse_known_args(argv)
    if unknown and args.command not in DELEGATED:
        build_parser().error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command in DELEGATED:
        args.rest = unknown + args.rest  # options before the first positional land in unknown
    try:
        return args.func(args)
    except BrokenPipeError:
        # The reader of our output left (`agentperp replay verify DIR | head`): end quietly, as
        # a shell tool does, with stdout pointed at /dev/null so the exit's flush cannot fail too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
