"""Exactly once under kill -9: a forked process runs the SQL projection and SIGKILLs itself
at a seeded random point — before any SQL statement or commit of the run, so inside a
transaction, between the checkpoint and the rows, or just before the commit; a second one
resumes and is killed too; a third finishes. Each batch commits in chunks (one transaction
each), so deaths also fall between two chunks of one batch. Every table must then equal a
rebuild from seq 0 (in whole batches), row for row (a checksum per table). Each trial's seed
reproduces it exactly."""

from __future__ import annotations

import os
import random
import signal

from sqlalchemy import event

from engine import events as ev
from ledger.projections.runner import RetryPolicy, Runner
from ledger.projections.source import JournalSource
from ledger.projections.sql import queries
from ledger.projections.sql.model import SqlProjection
from tests.projections.support import SYMBOLS

TRIALS = 50
SEED = 20261127
TO_SEQ = 600  # a prefix of the generated session keeps each trial to a fraction of a second
BATCH_EVENTS = 16  # many small transactions: many places to die
CHUNK_EVENTS = 5  # a batch commits in 3 or 4 transactions


def _run(journal_dir, url: str, kill_at: int | None, chunk_events: int = CHUNK_EVENTS) -> int:
    """Catch up to TO_SEQ; with ``kill_at``, SIGKILL ourselves at that statement or commit.
    Returns the number of statements and commits seen."""
    projection = SqlProjection(url, symbols=SYMBOLS, chunk_events=chunk_events)
    seen = [0]

    def tick(*_args, **_kw) -> None:
        seen[0] += 1
        if seen[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    event.listen(projection.engine, "before_cursor_execute", tick)
    event.listen(projection.engine, "commit", tick)
    Runner(journal_dir, [projection], batch_events=BATCH_EVENTS).catch_up(TO_SEQ)
    projection.close()
    return seen[0]


def _forked(journal_dir, url: str, kill_at: int | None) -> int:
    """Run ``_run`` in a child process; its end: -SIGKILL or its exit status."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            _run(journal_dir, url, kill_at)
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _checksums(url: str) -> dict[str, str]:
    projection = SqlProjection(url, symbols=SYMBOLS, migrate=False)
    with projection.engine.connect() as conn:
        out = queries.table_checksums(conn)
        out["checkpoint"] = queries.checkpoint(conn, "sql")[0]
    projection.close()
    return out


def test_kill_9_at_random_points_leaves_tables_equal_to_a_rebuild(generated_journal, tmp_path):
    reference_url = f"sqlite:///{tmp_path / 'reference.db'}"
    _run(generated_journal, reference_url, None, chunk_events=BATCH_EVENTS)  # one transaction per batch
    reference = _checksums(reference_url)
    statements = _run(generated_journal, f"sqlite:///{tmp_path / 'count.db'}", None)  # how many points to die at
    assert reference["checkpoint"] == TO_SEQ
    rng = random.Random(SEED)
    killed = 0
    for trial in range(TRIALS):
        url = f"sqlite:///{tmp_path / f'trial{trial}.db'}"
        for _ in range(2):  # two deaths, the second while resuming from the first
            end = _forked(generated_journal, url, rng.randint(1, statements))
            assert end in (-signal.SIGKILL, 0), (trial, end)
            killed += end == -signal.SIGKILL
        assert _forked(generated_journal, url, None) == 0, trial
        assert _checksums(url) == reference, f"trial {trial} (seed {SEED}) differs from the rebuild"
    assert killed >= TRIALS  # most kill points fall inside a run


def test_a_batch_failing_between_its_chunks_resumes_from_the_last_committed_one(generated_journal, tmp_path):
    """The database refuses one chunk's rows (a trigger calling a function that fails once):
    the chunks before it stay committed with their checkpoint, the runner retries from that
    checkpoint, not from the batch's start, and the tables equal a rebuild in whole batches."""
    reference_url = f"sqlite:///{tmp_path / 'reference.db'}"
    _run(generated_journal, reference_url, None, chunk_events=BATCH_EVENTS)
    reference = _checksums(reference_url)

    projection = SqlProjection(f"sqlite:///{tmp_path / 'faulty.db'}", symbols=SYMBOLS, chunk_events=50)
    fail_at = [0]  # the seq of the first fill: set below, failed once

    def refuse_once(seq: int) -> int:
        if seq == fail_at[0]:
            fail_at[0] = -1
            raise ValueError(f"injected fault at seq {seq}")
        return 0

    @event.listens_for(projection.engine, "connect")
    def _fault(dbapi_connection, _record) -> None:
        dbapi_connection.create_function("refuse_once", 1, refuse_once)

    projection.engine.dispose()  # connections made from now on carry the function
    first_fill = next(e.seq for r in JournalSource(generated_journal).read_batch(1, TO_SEQ, 100_000)
                      for e in r.events if type(e) is ev.PositionOpened and e.seq > 120)
    fail_at[0] = first_fill
    with projection.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TRIGGER fault BEFORE INSERT ON fills BEGIN SELECT refuse_once(NEW.seq); END")
    runner = Runner(generated_journal, [projection], batch_events=TO_SEQ, retry=RetryPolicy(backoff_s_min=0.0))
    assert runner.catch_up(TO_SEQ) == {"sql": TO_SEQ}
    status = runner.status["sql"]
    assert fail_at[0] == -1 and status.failures == 1
    resumed_after = TO_SEQ - status.events_applied  # the checkpoint the retry started from
    assert 0 < resumed_after < first_fill  # a chunk's, inside the batch: its first chunks were not redone
    with projection.engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER fault")
    projection.close()
    assert _checksums(f"sqlite:///{tmp_path / 'faulty.db'}") == reference
