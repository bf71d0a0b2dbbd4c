"""One contract, every backend: the read models of a seeded session equal the engine's own
books, whatever the batch size, on SQLite and on a real PostgreSQL (DESIGN §9, SQL)."""

from __future__ import annotations

from sqlalchemy import func, select

from engine import views
from engine.markets import default_config
from ledger.projections.runner import Runner
from ledger.projections.source import JournalSource
from ledger.projections.sql import migrate, queries
from ledger.projections.sql import schema as t
from ledger.projections.sql.model import SqlProjection
from replay.rebuild import rebuild
from replay.source import ReplayJournal
from tests.projections.support import SYMBOLS


def _project(journal_dir, url, batch_events=5_000, name="sql") -> tuple[SqlProjection, int]:
    projection = SqlProjection(url, symbols=SYMBOLS, name=name)
    seq = Runner(journal_dir, [projection], batch_events=batch_events).catch_up()[name]
    return projection, seq


def test_books_equal_the_engines(generated_journal, db_url):
    projection, seq = _project(generated_journal, db_url)
    state = rebuild(ReplayJournal(generated_journal), default_config())
    assert seq == state.last_seq == JournalSource(generated_journal).last_seq()
    with projection.engine.connect() as conn:
        agents = {r.agent: (r.free_e6, r.held_e6) for r in conn.execute(select(t.agents))}
        assert agents == {a: (int(state.agents.v.free_e6[row]), int(state.agents.v.held_e6[row]))
                          for a, row in state.agent_row.items()}
        system = {r.account: r.balance_e6 for r in conn.execute(select(t.system_accounts))}
        books = views.books(state)
        assert system["fees"] == books.fees_e6 and system["insurance"] == books.insurance_e6
        assert -system["external"] == books.deposited_e6 - books.withdrawn_e6
        open_rows = {r.position_id: (r.open_size_e6, r.margin_long_e6, r.margin_short_e6) for r in
                     conn.execute(select(t.positions).where(t.positions.c.status == "open"))}
        assert open_rows == {p.position_id: (p.size_e6, p.margin_long_e6, p.margin_short_e6)
                             for p in views.positions(state)}
        margins = conn.execute(select(func.sum(t.positions.c.margin_long_e6 + t.positions.c.margin_short_e6))).scalar()
        assert sum(agents[a][0] + agents[a][1] for a in agents) + margins + sum(system.values()) == 0
        assert conn.execute(select(func.count()).select_from(t.rfqs).where(t.rfqs.c.status == "open")).scalar() \
            == books.open_rfqs
        assert conn.execute(select(func.count()).select_from(t.quotes).where(t.quotes.c.outcome == "live")).scalar() \
            == books.live_quotes
        counts = queries.table_counts(conn)
        assert counts["liquidations"] > 0 and counts["funding_payments"] > 0 and counts["closes"] > 0
        # The transfers table is the whole double-entry ledger: it nets to zero per kind of account.
        assert conn.execute(select(func.sum(t.transfers.c.amount_e6))).scalar() > 0
        assert migrate.current(projection.engine) == migrate.head()
    projection.close()


def test_batch_size_does_not_change_a_row(generated_journal, db_url, tmp_path):
    whole, _ = _project(generated_journal, db_url)
    small, _ = _project(generated_journal, f"sqlite:///{tmp_path / 'small.db'}", batch_events=7)
    with whole.engine.connect() as a, small.engine.connect() as b:
        assert queries.table_checksums(a) == queries.table_checksums(b)
    whole.close()
    small.close()


def test_a_second_run_applies_nothing_and_a_rebuild_is_identical(generated_journal, db_url):
    projection, seq = _project(generated_journal, db_url)
    with projection.engine.connect() as conn:
        before = queries.table_checksums(conn)
    runner = Runner(generated_journal, [projection])
    assert runner.catch_up() == {"sql": seq} and runner.status["sql"].events_applied == 0
    projection.reset()
    assert projection.load_checkpoint() == 0
    assert Runner(generated_journal, [projection], batch_events=333).catch_up() == {"sql": seq}
    with projection.engine.connect() as conn:
        assert queries.table_checksums(conn) == before
        assert queries.checkpoint(conn, "sql")[0] == seq
    projection.close()


def test_a_stale_writer_cannot_double_count(generated_journal, db_url):
    """Two writers of one projection name: the checkpoint's compare-and-set refuses the second."""
    first = SqlProjection(db_url, symbols=SYMBOLS)
    second = SqlProjection(db_url, symbols=SYMBOLS, migrate=False)
    records = JournalSource(generated_journal).read_batch(1, 10**9, 50)
    assert first.load_checkpoint() == 0 == second.load_checkpoint()
    first.apply(records, 0)
    try:
        second.apply(records, 0)
    except RuntimeError as error:
        assert "checkpoint is not at seq 0" in str(error)
    else:
        raise AssertionError("the second writer was not refused")
    with first.engine.connect() as conn:
        assert queries.checkpoint(conn, "sql")[0] == records[-1].last_seq
    first.close()
    second.close()


def test_every_row_has_its_tables_columns_in_order(generated_journal, tmp_path):
    """Rows are written from their dicts' values, so a row built with its keys out of column
    order would put values into the wrong columns (the write asserts only each call's first
    row). Every row of every kind, after small batches and after a reload from the database."""
    projection = SqlProjection(f"sqlite:///{tmp_path / 'order.db'}", symbols=SYMBOLS)
    source = JournalSource(generated_journal)  # batches applied here: a runner would retry a failure forever
    columns = {table.name: [c.name for c in table.columns] for table in t.MODEL_TABLES}
    caches = {"agents": "agents", "system_accounts": "system", "rfqs": "rfqs", "quotes": "quotes",
              "positions": "positions", "agent_kpis": "kpis"}
    checked = dict.fromkeys(columns, 0)
    seq, last_seq, batches = projection.load_checkpoint(), source.last_seq(), 0
    while seq < last_seq:
        seq = projection.apply(source.read_batch(seq + 1, last_seq, 7), seq)
        rows = [(table, row) for table, cache in caches.items() for row in getattr(projection, cache).rows.values()]
        rows += [(table, row) for table, batch in projection.inserts.items() for row in batch]
        for table, row in rows:
            assert (list(row) if type(row) is dict else len(row)) == (
                columns[table] if type(row) is dict else len(columns[table])), (table, row)
            checked[table] += 1
        batches += 1
        if batches % 50 == 0:
            projection.recover()  # the next batch reloads the cached rows from the database
    assert all(checked[table] for table in columns if table != "agent_daily_pnl"), checked
    projection.close()


def test_the_migrations_build_exactly_the_schema(db_url):
    """alembic's revisions and ``schema.py`` agree: autogenerate finds nothing to add."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    projection = SqlProjection(db_url, symbols=SYMBOLS)
    with projection.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": migrate.VERSION_TABLE})
        assert compare_metadata(context, t.metadata) == []
    projection.close()


def test_write_rows_of_a_recorded_rebuild_make_the_same_tables(generated_journal, db_url, tmp_path):
    """``bench projections``' floor writes a rebuild's rows again, made beforehand, by
    ``write_rows`` alone: it must be the same database work, so the same tables."""
    from benchmarks.projections import _Recording

    recording = _Recording(f"sqlite:///{tmp_path / 'recording.db'}", symbols=SYMBOLS)
    Runner(generated_journal, [recording], batch_events=500).catch_up()
    assert len(recording.batches) > 1
    upserted = {name for rows_by_table, *_ in recording.batches for name, upsert, _rows in rows_by_table if upsert}
    assert {"positions", "agents", "agent_kpis"} <= upserted  # rows that outlive a batch are upserted
    again = SqlProjection(db_url, symbols=SYMBOLS)
    assert again.load_checkpoint() == 0
    for rows_by_table, after_seq, last_seq, last_ts_ns in recording.batches:
        again.write_rows(rows_by_table, after_seq, last_seq, last_ts_ns)
    with recording.engine.connect() as a, again.engine.connect() as b:
        assert queries.table_checksums(a) == queries.table_checksums(b)
        assert again.load_checkpoint() == recording.load_checkpoint() == JournalSource(generated_journal).last_seq()
    recording.close()
    again.close()
