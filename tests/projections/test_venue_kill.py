"""The whole venue killed with SIGKILL while its demo agents trade and the SQL projection
follows: after a restart the read model equals a rebuild of the journal, table for table."""

from __future__ import annotations

import os
import subprocess
import sys

from ledger.projections.runner import Runner
from ledger.projections.source import JournalSource
from ledger.projections.sql import queries
from ledger.projections.sql.model import SqlProjection
from tests.projections.support import SYMBOLS
from tests.support import kill_after_status_lines

STATUS_LINES_BEFORE_KILL = 3  # the status line comes every second: ~3 s of trading


def _venue(data_dir, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen([sys.executable, "-m", "venue.cli", "run", "--data", str(data_dir), "--port", "0",
                             "--http-port", "0", *extra], stdout=subprocess.PIPE, text=True, env=env)


def test_a_venue_killed_mid_run_resumes_its_read_model_exactly(tmp_path):
    data = tmp_path / "data"
    venue = _venue(data, "--duration", "60")
    kill_after_status_lines(venue, STATUS_LINES_BEFORE_KILL, "sql lag")
    restarted = _venue(data, "--duration", "1")
    output = restarted.communicate(timeout=120)[0]
    assert restarted.returncode == 0, output
    assert "| sql lag 0" in output.splitlines()[-1]  # the final line: caught up before it stopped

    last_seq = JournalSource(data / "journal").last_seq()
    kept = SqlProjection(f"sqlite:///{data / 'read_model.sqlite'}", symbols=SYMBOLS, migrate=False)
    rebuilt = SqlProjection(f"sqlite:///{tmp_path / 'rebuilt.db'}", symbols=SYMBOLS)
    Runner(data / "journal", [rebuilt]).catch_up()
    with kept.engine.connect() as a, rebuilt.engine.connect() as b:
        assert queries.checkpoint(a, "sql")[0] == last_seq > 0
        assert queries.table_checksums(a) == queries.table_checksums(b)
    kept.close()
    rebuilt.close()
