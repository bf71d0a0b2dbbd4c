"""``agentperp projections status|rebuild``: ops' view of the journal's projections.

    agentperp projections status  [--data DIR] [--sql URL]
    agentperp projections rebuild sql [--from-seq 0] [--data DIR] [--sql URL] [--batch-events N]
    agentperp projections rebuild jetstream --from-seq N [--data DIR]

``status`` shows each projection's checkpoint against the journal's last seq, its schema
revision and its row counts. ``rebuild`` empties the read models and applies the journal
from seq 0 (stop the venue first: a running venue's projection would find its checkpoint
moved and continue from it). The SQL read models rebuild from seq 0 only: balances and KPIs
depend on every event before. ``rebuild jetstream --from-seq N`` moves the publisher's
checkpoint back: records from N are published again (JetStream drops the ones it still holds
within its duplicate window).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ledger.gc_policy import tune_gc
from ledger.genesis import journal_config
from ledger.projections.external import JETSTREAM_CHECKPOINT_FILE, SQLITE_FILE, FileCheckpoint
from ledger.projections.runner import Runner
from ledger.projections.source import BATCH_EVENTS_DEFAULT, JournalSource

PROJECTIONS = ("sql", "jetstream")


def _url(args) -> str:
    return args.sql or f"sqlite:///{(Path(args.data) / SQLITE_FILE).resolve()}"


def _open(args, migrate: bool):
    from ledger.projections.sql.model import SqlProjection

    config = journal_config(Path(args.data) / "journal").config  # the journal's own symbols (DESIGN §7)
    return SqlProjection(_url(args), symbols=[market.symbol for market in config.markets], migrate=migrate)


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
    published = Path(args.data) / JETSTREAM_CHECKPOINT_FILE
    if published.exists():
        seq = FileCheckpoint(published).load()
        print(f"jetstream  checkpoint seq {seq:,}, lag {max(0, last_seq - seq):,} seqs ({published})")
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
    if args.name == "jetstream":  # an external sink: republish from a seq (JetStream drops what it has)
        FileCheckpoint(Path(args.data) / JETSTREAM_CHECKPOINT_FILE).save(max(0, args.from_seq - 1))
        print(f"jetstream: the next publisher (agentperp stream publish, or run --nats) starts at seq "
              f"{max(1, args.from_seq):,}")
        return 0
    if args.from_seq != 0:
        print("agentperp projections rebuild: the SQL read models rebuild from seq 0 only (balances and KPIs "
              "depend on every event before)", file=sys.stderr)
        return 2
    projection = _open(args, migrate=True)
    try:
        projection.reset()
        tune_gc()  # the venue's policy: CPython's default cost ~20% more CPU an event
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
            sub.add_argument("name", help="the projection: sql | jetstream")
            sub.add_argument("--from-seq", type=int, default=0, metavar="N",
                             help="sql: 0 only; jetstream: republish from this seq")
            sub.add_argument("--batch-events", type=int, default=BATCH_EVENTS_DEFAULT, metavar="N")
        sub.add_argument("--data", default="data", metavar="DIR", help="the venue's data directory (default ./data)")
        sub.add_argument("--sql", metavar="URL", help="the read models' database (default DIR/read_model.sqlite)")
        sub.set_defaults(func=func)
    args = parser.parse_args(argv)
    return args.func(args)
