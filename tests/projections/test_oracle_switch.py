"""An ``OracleSourceSwitched`` (an audit event, docs/oracle.md "Failover") in the journal:
the SQL read model passes it by and books everything around it, as it does any event that
moves no money."""

from __future__ import annotations

from sqlalchemy import select

from engine import commands as cmd
from engine import events as ev
from ledger.projections.runner import Runner
from ledger.projections.sql import schema as t
from ledger.projections.sql.model import SqlProjection
from tests.projections.support import E6, E8, SYMBOLS, T0_NS, JournalWriter


def test_the_sql_projection_passes_a_source_switch(tmp_path):
    w = JournalWriter(tmp_path / "data")
    w(T0_NS, cmd.Deposit("alice", 1_000 * E6, "dep-alice"))
    w(T0_NS, cmd.OracleUpdate(0, 100_000 * E8, 10 * E8, T0_NS, "pyth"))
    switched = w(T0_NS + 1, cmd.SwitchOracleSource(0, "pyth", "ccxt", "stale"))
    w(T0_NS + 2, cmd.OracleUpdate(0, 100_100 * E8, 10 * E8, T0_NS + 2, "ccxt"))
    w.close()
    assert [type(e) for e in switched] == [ev.OracleSourceSwitched]

    projection = SqlProjection(f"sqlite:///{tmp_path / 'read.db'}", symbols=SYMBOLS, name="sql")
    try:
        assert Runner(tmp_path / "data" / "journal", [projection]).catch_up() == {"sql": w.state.last_seq}
        with projection.engine.connect() as conn:
            prices = [(r.seq, r.source) for r in conn.execute(select(t.oracle_prices).order_by(t.oracle_prices.c.seq))]
            assert prices == [(2, "pyth"), (4, "ccxt")]  # seq 3 is the switch: no row, no gap in the checkpoint
            assert conn.execute(select(t.agents.c.free_e6).where(t.agents.c.agent == "alice")).scalar() == 1_000 * E6
    finally:
        projection.close()
