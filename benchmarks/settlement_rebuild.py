"""How long the venue's embedded chain takes to rebuild from the journal at a start (issue 13).

``agentperp run --settlement litesvm`` does not persist LiteSVM's accounts: at every start
the chain is new and the settlement projection settles the whole journal onto it again
(idempotent; the replica used by reconcile is rebuilt alongside). This times exactly that
path — ``venue.settlement.ReplicaSink`` over a fresh ``litesvm_backend`` on the projection
runner's ``catch_up`` — on a seeded engine journal (``benchmarks.escrow_cu.seeded_journal``:
deposits, opens, two funding boundaries over every open position, closes; dense in settled
events, so a pessimistic mix), and extrapolates linearly to 1 000 000 journal events.

    PYTHONPATH=. python -m benchmarks.settlement_rebuild [--positions N] [--json FILE]
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
from pathlib import Path

EXTRAPOLATE_TO_EVENTS = 1_000_000


def measure(positions: int) -> dict:
    from adapters.solana.checkpoint import CheckpointStore
    from adapters.solana.projection import SettlementProjection
    from adapters.solana.runner_sink import SettlementSink
    from benchmarks.escrow_cu import seeded_journal
    from ledger.projections.runner import Runner
    from programs.escrow.build import build
    from venue.settlement import ReplicaSink, litesvm_backend

    program = build()
    with tempfile.TemporaryDirectory() as tmp:
        journal_dir = Path(tmp) / "journal"
        last_seq = seeded_journal(journal_dir, positions)
        gc.disable()
        try:
            start = time.perf_counter()
            backend = litesvm_backend(program)
            projection = SettlementProjection(backend, CheckpointStore(Path(tmp) / "cp.json"),
                                              on_unmirrorable="record", on_program_error="halt")
            sink = ReplicaSink(SettlementSink(projection), journal_dir, Path(tmp) / "snapshots")
            Runner(journal_dir, [sink]).catch_up()
            elapsed = time.perf_counter() - start
        finally:
            gc.enable()
        sink.close()
    stats = projection.stats
    per_event_s = elapsed / last_seq
    return {"settlement_rebuild.journal_events": last_seq, "settlement_rebuild.settled_events": stats.events_settled,
            "settlement_rebuild.transactions": stats.transactions, "settlement_rebuild.seconds": round(elapsed, 2),
            "settlement_rebuild.journal_events_per_s": round(last_seq / elapsed, 1),
            "settlement_rebuild.settled_events_per_s": round(stats.events_settled / elapsed, 1),
            "settlement_rebuild.extrapolated_1m_events_s": round(per_event_s * EXTRAPOLATE_TO_EVENTS)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="settlement_rebuild", description=__doc__.split("\n\n")[0])
    parser.add_argument("--positions", type=int, default=2_000)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)
    figures = measure(args.positions)
    for key, value in figures.items():
        print(f"{key:48s} {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
