"""Exactly once under kill -9: a forked process runs the SQL projection and SIGKILLs itself
at a seeded random point — before any statement SQLite runs (each row statement of a batch,
the checkpoint's update, the BEGIN and the COMMIT), so inside a transaction, between the
checkpoint and the rows, or just before the commit; a second one resumes and is killed too;
a third finishes. Every table must then equal a rebuild from seq 0, row for row (a checksum
per table). Each trial's seed reproduces it exactly.

The points come from SQLite's own statement hook (``set_trace_callback``), not SQLAlchemy's
events: the projection writes its rows through the driver's cursor, past those events."""

from __future__ import annotations

import os
import random
import signal

from sqlalchemy import event

from ledger.projections.runner import Runner
from ledger.projections.sql import queries
from ledger.projections.sql.model import SqlProjection
from tests.projections.support import SYMBOLS

TRIALS = 50
SEED = 20261127
TO_SEQ = 600  # a prefix of the generated session keeps each trial to a fraction of a second
BATCH_EVENTS = 16  # many small transactions: many places to die


def _run(journal_dir, url: str, kill_at: int | None) -> int:
    """Catch up to TO_SEQ; with ``kill_at``, SIGKILL ourselves before that SQLite statement.
    Returns the number of statements seen."""
    projection = SqlProjection(url, symbols=SYMBOLS)
    seen = [0]

    def tick(_statement: str) -> None:
        seen[0] += 1
        if seen[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    event.listen(projection.engine, "connect", lambda dbapi_connection, _record:
                 dbapi_connection.set_trace_callback(tick))
    projection.engine.dispose()  # the migrations' pooled connection: the next one is hooked
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
    statements = _run(generated_journal, reference_url, None)  # one whole run: how many points to die at
    reference = _checksums(reference_url)
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
