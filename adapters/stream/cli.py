"""``agentperp stream``: the journal on NATS JetStream.

    agentperp stream publish --nats URL [--data DIR] [--stream NAME] [--follow]
    agentperp stream project sql --nats URL [--sql URL] [--stream NAME] [--follow]

``publish`` sends the journal's genesis record and every record with events to the stream
(``Nats-Msg-Id`` = cmd_id: a restarted publisher never duplicates), from its checkpoint
(``DIR/jetstream.checkpoint``). ``project`` runs the SQL read models from the stream instead
of a local journal: a read model on another machine, with the configuration (market
symbols) of the journal's genesis record on the stream. Without ``--follow`` both stop at the end of what is there now;
with it they look again every ``--interval`` seconds until Ctrl-C.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from adapters.stream.jetstream import STREAM_DEFAULT, SUBJECT_DEFAULT, JetStreamPublisher, JetStreamSource
from ledger.projections.external import JETSTREAM_CHECKPOINT_FILE
from ledger.projections.runner import Runner
from ledger.projections.source import BATCH_EVENTS_DEFAULT

FOLLOW_INTERVAL_S_DEFAULT = 1.0


def _loop(runner: Runner, name: str, follow: bool, interval_s: float) -> int:
    try:
        while True:
            seq = runner.catch_up()[name]
            print(f"{name}: at seq {seq:,} ({runner.status[name].events_applied:,} events this run)", flush=True)
            if not follow:
                return 0
            runner.tail = None  # the next catch_up looks for the new end
            time.sleep(interval_s)
    except KeyboardInterrupt:
        return 130


def publish(args) -> int:
    journal_dir = Path(args.data) / "journal"
    publisher = JetStreamPublisher(args.nats, Path(args.data) / JETSTREAM_CHECKPOINT_FILE, journal_dir,
                                   stream=args.stream, subject=args.subject)
    try:
        return _loop(Runner(journal_dir, [publisher], batch_events=args.batch_events),
                     publisher.name, args.follow, args.interval)
    finally:
        publisher.close()


def project(args) -> int:
    from ledger.projections.sql.model import SqlProjection

    sources: list[JetStreamSource] = []

    def source() -> JetStreamSource:
        sources.append(JetStreamSource(args.nats, stream=args.stream, subject=args.subject))
        return sources[-1]

    projection = None
    try:
        config = source().journal_config().config  # the journal's own, from its genesis record (DESIGN §7)
        projection = SqlProjection(args.sql, symbols=[market.symbol for market in config.markets])
        runner = Runner(None, [projection], batch_events=args.batch_events, source=source)
        return _loop(runner, projection.name, args.follow, args.interval)
    finally:
        if projection is not None:
            projection.close()
        for s in sources:
            s.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="agentperp stream", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="action", required=True)
    pub = actions.add_parser("publish", help="publish the journal to JetStream")
    pub.add_argument("--data", default="data", metavar="DIR", help="the venue's data directory (default ./data)")
    pub.set_defaults(func=publish)
    proj = actions.add_parser("project", help="run a projection from JetStream")
    proj.add_argument("name", choices=["sql"])
    proj.add_argument("--sql", default="sqlite:///read_model.sqlite", metavar="URL", help="the read models' database")
    proj.set_defaults(func=project)
    for sub in (pub, proj):
        sub.add_argument("--nats", required=True, metavar="URL", help="e.g. nats://127.0.0.1:4222")
        sub.add_argument("--stream", default=STREAM_DEFAULT)
        sub.add_argument("--subject", default=SUBJECT_DEFAULT)
        sub.add_argument("--batch-events", type=int, default=BATCH_EVENTS_DEFAULT, metavar="N")
        sub.add_argument("--follow", action="store_true", help="keep going as the journal grows")
        sub.add_argument("--interval", type=float, default=FOLLOW_INTERVAL_S_DEFAULT, metavar="SECONDS")
    args = parser.parse_args(argv)
    return args.func(args)
