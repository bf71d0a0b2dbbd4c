"""The SQL read models in their own process (``[projections] sql_process = "on"``; "auto" from 2 cores):
a real venue's child process follows the journal, is killed with SIGKILL mid-stream and
restarted by the venue, and its tables end equal to a rebuild of the journal, row for row;
the child's protocol refuses what breaks it and ends with the venue's pipe."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import pytest

from ledger.projections import process as pp
from ledger.projections.runner import Runner
from ledger.projections.source import JournalSource
from ledger.projections.sql import queries
from ledger.projections.sql.model import SqlProjection
from replay.generate import START_NS
from tests.projections.support import SYMBOLS, bare_venue_config, submit_session
from tests.support import FakeClock

ROUNDS = 240
KILL_AT_ROUNDS = (60, 120, 180)  # the child is killed as these rounds are submitted (its work not waited for)


async def _run_venue(data_dir) -> dict:
    from venue.app import Venue

    config = bare_venue_config(data_dir, sql_process="on")
    clock = FakeClock(START_NS)
    venue = Venue(config, clock=clock)
    await venue.start(serve=False)
    child = venue.projections.sql_process
    killed: list[int] = []
    async def kill(round_: int, _pending: list) -> None:
        if round_ in KILL_AT_ROUNDS:  # a child that is up (the one killed before was replaced)
            await child.until(lambda: child.pid not in killed and child.status["sql"].state != "retrying")
            killed.append(child.pid)
            os.kill(child.pid, signal.SIGKILL)  # whatever it is doing: reading, applying, committing

    try:
        await submit_session(venue, clock, ROUNDS, kill)
        last_seq = venue.hub.last_seq
        await venue.projections.wait_for_seq("sql", last_seq)
        [sql] = [item for item in venue.projections.summary() if item["name"] == "sql"]
    finally:
        await venue.stop()
    return {"last_seq": last_seq, "summary": sql, "pids": [*killed, child.pid], "returncode": child._process.returncode}


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("sql-process") / "data"
    return data_dir, asyncio.run(_run_venue(data_dir))


def test_killed_children_are_restarted_and_the_read_model_equals_a_rebuild(killed_run, tmp_path):
    data_dir, run = killed_run
    summary = run["summary"]
    assert summary["process_exits"] == len(KILL_AT_ROUNDS) and summary["failures"] >= len(KILL_AT_ROUNDS)
    assert len(set(run["pids"])) == len(KILL_AT_ROUNDS) + 1  # a new child after each kill
    assert summary["lag_seq"] == 0 and summary["seq"] == run["last_seq"] > 0
    assert run["returncode"] == 0  # the last child caught up and exited when the venue stopped

    kept = SqlProjection(f"sqlite:///{data_dir / 'read_model.sqlite'}", symbols=SYMBOLS, migrate=False)
    rebuilt = SqlProjection(f"sqlite:///{tmp_path / 'rebuilt.db'}", symbols=SYMBOLS)
    Runner(data_dir / "journal", [rebuilt]).catch_up()
    with kept.engine.connect() as a, rebuilt.engine.connect() as b:
        assert queries.checkpoint(a, "sql")[0] == run["last_seq"] == JournalSource(data_dir / "journal").last_seq()
        assert queries.table_checksums(a) == queries.table_checksums(b)
    kept.close()
    rebuilt.close()


def test_frames_over_the_bound_or_not_a_map_are_refused():
    with pytest.raises(pp.FrameError, match="over FRAME_BYTES_MAX"):
        pp.encode_frame({"status": {"last_error": "x" * pp.FRAME_BYTES_MAX}})
    with pytest.raises(pp.FrameError, match="over FRAME_BYTES_MAX"):
        pp.frame_length((pp.FRAME_BYTES_MAX + 1).to_bytes(pp.LENGTH_BYTES, "big"))
    with pytest.raises(pp.FrameError, match="not a msgpack map"):
        pp.decode_frame(b"\x93\x01\x02\x03")  # a msgpack array
    frame = pp.encode_frame({"tail": [7, 9]})
    assert pp.decode_frame(frame[pp.LENGTH_BYTES:]) == {"tail": [7, 9]}
    assert pp.frame_length(frame[:pp.LENGTH_BYTES]) == len(frame) - pp.LENGTH_BYTES


def _child(*frames: bytes, close: bool = True) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-m", "ledger.projections.process"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=pp._PROJECT_ROOT)
    for frame in frames:
        child.stdin.write(frame)
    child.stdin.flush()
    if close:
        child.stdin.close()
    return child


def test_a_child_without_a_spec_refuses_to_start():
    child = _child(pp.encode_frame({"tail": [1, 1]}))
    assert child.wait(timeout=60) == 2
    assert b"the first frame must be the spec" in child.stderr.read()


def test_a_child_reports_its_checkpoint_and_ends_with_the_venues_pipe(generated_journal, tmp_path):
    """The venue gone (its end of the pipe closed): the child stops, after reporting where it is."""
    url = f"sqlite:///{tmp_path / 'rm.db'}"
    SqlProjection(url, symbols=SYMBOLS).close()  # migrated, as the venue does before starting the child
    last_seq = JournalSource(generated_journal).last_seq()
    spec = {"kind": "sql", "name": "sql", "url": url, "symbols": list(SYMBOLS), "journal_dir": str(generated_journal),
            "batch_events": 1_000, "retry": {"backoff_s_min": 0.05, "backoff_s_max": 1.0}, "tail": [last_seq, 0]}
    child = _child(pp.encode_frame({"spec": spec}), pp.encode_frame({"stop": last_seq, "catch_up_s": 60.0}))
    statuses = []
    while (header := child.stdout.read(pp.LENGTH_BYTES)):
        statuses.append(pp.decode_frame(child.stdout.read(pp.frame_length(header)))["status"])
    assert child.wait(timeout=60) == 0
    assert statuses[-1]["seq"] == last_seq and statuses[-1]["state"] == "stopped"
    seqs = [s["seq"] for s in statuses]
    assert seqs == sorted(seqs)  # progress only ever moves forward


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux's SCHED_IDLE class")
def test_a_child_runs_only_on_the_cpu_the_venue_leaves_idle(generated_journal, tmp_path):
    url = f"sqlite:///{tmp_path / 'rm.db'}"
    SqlProjection(url, symbols=SYMBOLS).close()
    spec = {"kind": "sql", "name": "sql", "url": url, "symbols": list(SYMBOLS), "journal_dir": str(generated_journal),
            "batch_events": 1_000, "retry": {"backoff_s_min": 0.05, "backoff_s_max": 1.0}, "tail": [1, 0]}
    child = _child(pp.encode_frame({"spec": spec}), close=False)
    try:
        child.stdout.read(pp.LENGTH_BYTES)  # its first status: running, its threads started
        threads = os.listdir(f"/proc/{child.pid}/task")
        assert len(threads) > 1 and all(os.sched_getscheduler(int(tid)) == os.SCHED_IDLE for tid in threads)
    finally:
        child.stdin.close()  # the venue gone: the child exits
        assert child.wait(timeout=60) == 0


def test_auto_runs_the_child_only_with_cores_to_spare():
    from venue.projections import SQL_PROCESS_CORES_MIN, sql_in_own_process

    assert sql_in_own_process("auto", cores=SQL_PROCESS_CORES_MIN)
    assert not sql_in_own_process("auto", cores=SQL_PROCESS_CORES_MIN - 1)
    assert sql_in_own_process("on", cores=1) and not sql_in_own_process("off", cores=64)


# A child that reads its spec, reports a status whose seq is not a number, then reads the
# venue's frames until it is killed, told to stop, or its stdin ends.
_HOSTILE_CHILD = """
import sys
import msgspec
stdin, out = sys.stdin.buffer, sys.stdout.buffer
stdin.read(int.from_bytes(stdin.read(4), "big"))
body = msgspec.msgpack.encode({"status": {"name": "sql", "seq": "many"}})
out.write(len(body).to_bytes(4, "big") + body)
out.flush()
while (header := stdin.read(4)) and "stop" not in msgspec.msgpack.decode(stdin.read(int.from_bytes(header, "big"))):
    pass
"""


async def test_a_child_reporting_a_status_of_the_wrong_shape_is_killed_and_restarted(tmp_path):
    """What the venue reads from its child is checked: a status frame of the wrong shape is
    refused with its reason, that child killed and a new one started, as after a crash."""
    from adapters.gateway.hub import Hub

    spec = {"kind": "sql", "name": "sql", "journal_dir": str(tmp_path),
            "retry": {"backoff_s_min": 0.01, "backoff_s_max": 0.01}}
    child = pp.ProjectionProcess(spec, Hub(tmp_path, 0), 0, child=(sys.executable, "-c", _HOSTILE_CHILD))
    await child.start()
    refused = []
    await child.until(lambda: refused.append(child.status["sql"].last_error) or child.exits >= 2)
    await child.stop(0, 1.0)
    assert any("FrameError" in error and "not a status" in error and "$.seq" in error for error in refused)
    assert child.status["sql"].seq == 0 and child.status["sql"].state == "stopped"
