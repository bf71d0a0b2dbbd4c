"""``agentperp projections status|rebuild``: ops' view of the journal's projections.

    agentperp projections status  [--data DIR] [--sql URL]
    agentperp projections rebuild sql [--from-seq 0] [--data DIR] [--sql URL] [--batch-events N]

``status`` shows each projection's checkpoint against the journal's last seq, its schema
revision and its row counts. ``rebuild`` empties the read models and applies the journal
from seq 0 (stop the venue first: a running venue's projection would find its checkpoint
moved and continue from it). The SQL read models rebuild from seq 0 only: balances and KPIs
depend on every event before.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from engine.markets import DEFAULT_SYMBOLS
from ledger.projections.runner import Runner
from ledger.projections.source import BATCH_EVENTS_DEFAULT, JournalSource

SQLITE_FILE = "read_model.sqlite"  # as venue.projections.SQLITE_FILE (the venue's default)
PROJECTIONS = ("sql",)


def _url(args) -> str:
    return args.sql or f"sqlite:///{(Path(args.data) / SQLITE_FILE).resolve()}"


def _open(args, migrate: bool):
    from ledger.projections.sql.model import SqlProjection

    return SqlProjection(_url(args), symbols=DEFAULT_SYMBOLS, migrate=migrate)


def status(args) -> int:
    from ledger.projections.sql import migrate, queries

    last_seq = JournalSource(Path(args.data) / "journal").last_seq()
    projection = _open(args, migrate=False)
    try:
        with projection.engine.connect() as conn:
            revision = migrate.current(projection.engine)
            found = queries.checkpoint(conn, "sql") if revision else None
            counts = queries.table_counts(conn) if revision else {}
    finally:
        projection.close()
    print(f"journal {args.data}/journal: last seq {last_seq:,}")
    if found is None:
        print(f"sql  {_url(args)}: never ran (schema {revision or 'absent'}, newest {migrate.head()})")
        return 0
    seq, ts_ns = found
    print(f"sql  {_url(args)}: checkpoint seq {seq:,}, lag {max(0, last_seq - seq):,} seqs "
          f"(schema {revision}, newest {migrate.head()})")
    print("     " + ", ".join(f"{name} {count:,}" for name, count in counts.items()))
    return 0


def rebuild(args) -> int:
    if args.name not in PROJECTIONS:
        print(f"agentperp projections rebuild: unknown projection {args.name!r} (known: {', '.join(PROJECTIONS)})",
              file=sys.stderr)
        return 2
    if args.from_seq != 0:
        print("agentperp projections rebuild: the SQL read models rebuild from seq 0 only (balances and KPIs "
              "depend on every event before)", file=sys.stderr)
        return 2
    projection = _open(args, migrate=True)
    try:
        projection.reset()
        started = time.perf_counter()
        runner = Runner(Path(args.data) / "journal", [projection], batch_events=args.batch_events)
        seq = runner.catch_up()["sql"]
        seconds = time.perf_counter() - started
    finally:
        projection.close()
    events = runner.status["sql"].events_applied
    print(f"sql rebuilt to seq {seq:,}: {events:,} events in {seconds:,.1f} s ({events / max(seconds, 1e-9):,.0f}/s)")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="agentperp projections", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="action", required=True)
    for name, func, help_text in (("status", status, "checkpoints, lag, schema and row counts"),
                                  ("rebuild", rebuild, "empty a projection and apply the journal from seq 0")):
        sub = actions.add_parser(name, help=help_text)
        if name == "rebuild":
            sub.add_argument("name", help="the projection: sql")
            sub.add_argument("--from-seq", type=int, default=0, metavar="N", help="0 (the SQL read models' only)")
            sub.add_argument("--batch-events", type=int, default=BATCH_EVENTS_DEFAULT, metavar="N")
        sub.add_argument("--data", default="data", metavar="DIR", help="the venue's data directory (default ./data)")
        sub.add_argument("--sql", metavar="URL", help="the read models' database (default DIR/read_model.sqlite)")
        sub.set_defaults(func=func)
    args = parser.parse_args(argv)
    return args.func(args)
