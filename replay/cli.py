"""`agentperp replay ...`: the quants' toolkit on the command line (see docs/replay.md).

Every command takes JOURNAL = a data directory (holding journal/) or a journal directory.
Exit status: 0 success (verify: PASS), 1 verify FAIL, 2 bad usage or unreadable journal.
"""

from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal

from engine.markets import default_config
from replay.errors import ReplayError

EXIT_OK, EXIT_FAIL, EXIT_ERROR = 0, 1, 2


def _config(args: argparse.Namespace):
    """The configuration to assume for a journal without a genesis record (None: the
    default); a journal with one carries its own (``ReplayJournal.config``)."""
    if getattr(args, "checkpoint_every", None):
        return default_config(checkpoint_every_events=args.checkpoint_every)
    return None


def _usdc_e6(amount: Decimal) -> int:
    scaled = amount * 1_000_000
    if scaled != scaled.to_integral_value() or scaled <= 0:
        raise ReplayError(f"{amount} USDC is not a positive whole number of micro-USDC")
    return int(scaled)


def _progress(args: argparse.Namespace) -> bool | None:
    return False if args.quiet else None  # None: a bar only on a terminal


def _verify(args: argparse.Namespace) -> int:
    import replay.verify as verify

    if args.workers is not None and args.workers < 1:
        raise ReplayError(f"--workers must be at least 1, not {args.workers}")
    one_process = args.one_process or args.workers == 1
    result = verify.verify(args.journal, _config(args), progress=_progress(args),
                           read_ahead=False if one_process else None,
                           use_snapshots=not (args.no_snapshots or one_process), workers=args.workers)
    print(json.dumps(result.to_dict(), indent=1) if args.json else verify.format_result(result))
    return EXIT_OK if result.ok else EXIT_FAIL


def _state(args: argparse.Namespace) -> int:
    import replay.state_at as state_at

    state, report = state_at.state_at(args.journal, args.at, _config(args), progress=_progress(args))
    print(state_at.to_json(report) if args.json else
          state_at.format_table(report, [m.symbol for m in state.config.markets], args.limit))
    return EXIT_OK


def _export(args: argparse.Namespace) -> int:
    import replay.export as export

    tables = tuple(args.tables.split(",")) if args.tables else export.TABLES
    result = export.export(args.journal, args.out, args.format, _config(args), tables=tables,
                           progress=_progress(args))
    for name, rows in result.rows.items():
        print(f"{name:<14} {rows:>12,} rows  {result.files[name]}")
    print(f"{sum(result.rows.values()):,} rows from {result.events:,} events in {result.seconds:.2f} s "
          f"({result.rows_per_s:,.0f} rows/s)")
    return EXIT_OK


def _whatif(args: argparse.Namespace) -> int:
    import replay.whatif as whatif

    result = whatif.whatif(args.journal, args.set or [], _config(args), progress=_progress(args))
    if args.json_out:
        with open(args.json_out, "w") as f:
            f.write(whatif.to_json(result) + "\n")
    print(whatif.to_json(result) if args.json else whatif.format_table(result, args.limit))
    return EXIT_OK


def _backtest(args: argparse.Namespace) -> int:
    import replay.backtest as backtest

    result = backtest.backtest(args.journal, args.strategy, _config(args), seed=args.seed, agent=args.agent,
                               deposit_e6=_usdc_e6(args.deposit_usdc), figure=args.png,
                               progress=_progress(args))
    print(backtest.to_json(result) if args.json else backtest.format_table(result))
    return EXIT_OK


def _tournament(args: argparse.Namespace) -> int:
    import replay.tournament as tournament

    result = tournament.tournament(
        args.journals, [name.strip() for name in args.strategies.split(",") if name.strip()],
        tournament.parse_grid(args.grid or []), seed=args.seed, deposit_e6=_usdc_e6(args.deposit_usdc),
        config=_config(args), scheduler=args.scheduler, in_process=args.in_process, workers=args.workers,
        out=args.out, progress=_progress(args))
    print(tournament.to_json(result) if args.json else tournament.format_table(result))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agentperp replay", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, func) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("journal", metavar="JOURNAL", help="data directory (with journal/) or journal directory")
        sub.add_argument("--checkpoint-every", type=int, metavar="EVENTS",
                         help="for a journal without a genesis record only: the checkpoint interval it was "
                              "written with (default: the engine's 100 000); a journal with one "
                              "carries its own configuration")
        sub.add_argument("--quiet", action="store_true", help="no progress bar")
        sub.set_defaults(func=func)
        return sub

    v = command("verify", "rebuild from seq 1, check every checkpoint hash and the invariants; exit 1 on a "
                          "divergence, naming the first divergent seq and its command", _verify)
    v.add_argument("--json", action="store_true", help="print the result as JSON")
    v.add_argument("--one-process", action="store_true",
                   help="everything in this process: no stretch from a snapshot, no read-ahead (default: a "
                        "second process reads ahead when the machine has two cores and the journal is 4 MiB or "
                        "more)")
    v.add_argument("--no-snapshots", action="store_true",
                   help="one pass from seq 1 (default: with a data directory's snapshots, stretches of the "
                        "journal are verified at once, each in a process of its own, and each proven to end in "
                        "the state the next one's snapshot holds)")
    v.add_argument("--workers", type=int, metavar="N",
                   help="at most N stretches at once (default: one per core)")

    s = command("state", "the state at a seq or a time: balances, open RFQs and positions, insurance fund", _state)
    s.add_argument("--at", metavar="SEQ|ISO-TIME", help="a seq, or an ISO 8601 time (UTC if no offset); "
                                                        "default: the end")
    s.add_argument("--json", action="store_true", help="print the full state as JSON (engine units)")
    s.add_argument("--limit", type=int, default=50, help="rows per table in the text view (default 50)")

    e = command("export", "the journal as typed tables (rfqs, quotes, positions, fills, funding, liquidations, "
                          "transfers, oracle) in Parquet or CSV", _export)
    e.add_argument("out", metavar="OUT", help="output directory (one file per table)")
    e.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    e.add_argument("--tables", metavar="A,B", help="only these tables (comma separated)")

    w = command("whatif", "re-decide the journal under changed parameters and report what changes", _whatif)
    w.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="e.g. markets.BTC-PERP.maintenance_of_initial_bps=4000, markets.*.liquidation_reward_bps=300, "
                        "auto_liquidate_after_ms=5000 (repeatable; none: must reproduce the journal)")
    w.add_argument("--json", action="store_true", help="print the result as JSON")
    w.add_argument("--json-out", metavar="FILE", help="also write the JSON result to FILE")
    w.add_argument("--limit", type=int, default=40, help="agents shown in the text view (default 40)")

    b = command("backtest", "a market-making strategy against the recorded RFQs and prices", _backtest)
    b.add_argument("--strategy", required=True, metavar="MODULE:CLASS",
                   help="e.g. replay.strategies:SpreadMaker (built as CLASS(seed=SEED))")
    b.add_argument("--seed", type=int, default=0, help="the strategy's seed (default 0)")
    b.add_argument("--agent", default="backtest-maker", help="the agent key the strategy trades as")
    b.add_argument("--deposit-usdc", type=Decimal, default=Decimal(1_000_000), help="its deposit (default 1 000 000 USDC)")
    b.add_argument("--png", metavar="FILE", help="write the equity curve as a PNG")
    b.add_argument("--json", action="store_true", help="print the result as JSON")

    t = commands.add_parser("tournament", help="every strategy x parameter set on the same journals, on Dask",
                            description="every strategy x parameter set on the same journals under the venue's "
                                        "ranking: PnL, funding, fees, Sharpe, max drawdown, fill ratio (table, "
                                        "JSON, equity curves and PnL distributions); docs/strategies.md")
    t.add_argument("journals", nargs="+", metavar="JOURNAL", help="data directories (with journal/) or journal dirs")
    t.add_argument("--strategies", required=True, metavar="A,B",
                   help="short names (spread, conservative, balanced, aggressive, swarm, dynamic, arbitrage) "
                        "or MODULE:CLASS, comma separated")
    t.add_argument("--grid", action="append", metavar="PARAM=V1,V2",
                   help="a parameter's values (repeatable; the product is run; NAME.PARAM for one strategy only)")
    t.add_argument("--seed", type=int, default=0, help="every strategy's seed (default 0)")
    t.add_argument("--deposit-usdc", type=Decimal, default=Decimal(1_000_000), help="each strategy's deposit")
    t.add_argument("--scheduler", metavar="ADDRESS", help="a Dask scheduler (default: a LocalCluster)")
    t.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes (default 2)")
    t.add_argument("--in-process", action="store_true", help="no Dask: run one after the other here")
    t.add_argument("--out", metavar="DIR", help="write tournament.json, equity.png and pnl.png there")
    t.add_argument("--json", action="store_true", help="print the result as JSON")
    t.add_argument("--checkpoint-every", type=int, metavar="EVENTS",
                   help="the checkpoint interval the journals were written with")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=_tournament)
    return parser


def main(argv: list[str]) -> int:
    """Run ``agentperp replay`` with ``argv`` (what follows ``replay``); return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ReplayError as exc:
        print(f"agentperp replay {args.command}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except ValueError as exc:  # e.g. an invalid --checkpoint-every
        print(f"agentperp replay {args.command}: {exc}", file=sys.stderr)
        return EXIT_ERROR
