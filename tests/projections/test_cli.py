"""`agentperp projections status|rebuild`: what ops run against a data directory."""

from __future__ import annotations

from ledger.projections import cli
from ledger.projections.sql import migrate


def test_rebuild_then_status(generated_journal, tmp_path, capsys):
    data = str(generated_journal.parent)
    url = f"sqlite:///{tmp_path / 'read.db'}"
    assert cli.main(["status", "--data", data, "--sql", url]) == 0
    assert "never ran" in capsys.readouterr().out
    assert cli.main(["rebuild", "sql", "--data", data, "--sql", url, "--batch-events", "1000"]) == 0
    assert "sql rebuilt to seq" in capsys.readouterr().out
    assert cli.main(["status", "--data", data, "--sql", url]) == 0
    out = capsys.readouterr().out
    head = migrate.head()
    assert f"lag 0 seqs (schema {head}, newest {head})" in out and "liquidations" in out
    assert cli.main(["rebuild", "sql", "--from-seq", "7", "--data", data, "--sql", url]) == 2
    assert "from seq 0 only" in capsys.readouterr().err


def test_rebuild_jetstream_moves_the_publishers_checkpoint_back(tmp_path, capsys):
    (tmp_path / "journal").mkdir()
    assert cli.main(["rebuild", "jetstream", "--from-seq", "100", "--data", str(tmp_path)]) == 0
    assert (tmp_path / "jetstream.checkpoint").read_text() == '{"version": 1, "seq": 99}'
    assert cli.main(["status", "--data", str(tmp_path), "--sql", f"sqlite:///{tmp_path / 'r.db'}"]) == 0
    assert "jetstream  checkpoint seq 99" in capsys.readouterr().out
