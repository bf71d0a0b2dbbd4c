"""The hedger's audit trail in the SQL read model (adapters/hedging/audit_sql.py), on SQLite and
a real PostgreSQL: every JSONL line is one row and every order one row that matches the
exchange; no secret reaches a row; a restart, a lost notification or a replaced file re-imports
exactly the missing lines; a database that is away never holds the hedger up."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from adapters.hedging import audit_sql
from adapters.hedging.audit import REDACTED, AuditLog
from adapters.hedging.audit_sql import AuditSql
from adapters.hedging.hedger import Hedger
from ledger.projections.sql import schema as t
from tests.hedging import support as s
from tests.projections.conftest import postgres_server, postgres_url  # noqa: F401 (a fixture)

WAIT_S = 30.0  # a bound on waiting for the importer's thread, never a sleep


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'read_model.sqlite'}"
    return postgres_url(request.getfixturevalue("postgres_server"))


@pytest.fixture(scope="module")
def journal(tmp_path_factory):
    return s.make_journal(tmp_path_factory.mktemp("venue"), 600, seed=9)


def file_lines(path) -> list[tuple[int, bytes]]:
    out, offset = [], 0
    for line in path.read_bytes().split(b"\n")[:-1]:
        out.append((offset, line))
        offset += len(line) + 1
    return out


def audit_rows(engine) -> list:
    with engine.connect() as conn:
        return list(conn.execute(select(t.hedge_audit).order_by(t.hedge_audit.c.line_offset)))


async def test_a_hedger_run_is_in_sql_line_for_line_and_order_for_order(journal, binance, tmp_path, db_url):
    sim, url = binance
    s.add_accounts(sim, "a")
    hedger = Hedger(s.config(tmp_path, {"a": url}, audit_sql_url=db_url))
    await hedger.start()
    for batch in s.batches(journal):
        await hedger.handle(batch)
    # A request that carried secrets, the way a careless caller might log it.
    secret, api_key = s.key_of("maker00", "a").secret, s.key_of("maker00", "a").api_key
    hedger.audit.write("request", maker="maker00", exchange="a", call="raw",
                       headers={"X-MBX-APIKEY": api_key}, params={"secret": secret, "signature": "f00d"},
                       url=f"http://x/fapi/v1/order?symbol=BTCUSDT&signature=beef&apiKey={api_key}")
    engine = hedger.audit_sql.engine
    await hedger.close()  # imports the last lines before it returns

    lines = file_lines(tmp_path / "audit.jsonl")
    rows = audit_rows(engine)
    assert [(r.line_offset, r.record.encode()) for r in rows] == lines  # every line, once, in order
    assert {r.log_id for r in rows} == {hedger.audit.log_id}
    for r in rows:
        text = json.dumps([str(v) for v in r])
        for maker in s.MAKERS:
            creds = s.key_of(maker, "a")
            assert creds.secret not in text and creds.api_key not in text, r.record
        assert "f00d" not in text and "beef" not in text
    raw = json.loads(rows[-1].record)
    assert raw["headers"]["X-MBX-APIKEY"] == REDACTED and raw["params"] == {"secret": REDACTED, "signature": REDACTED}

    with engine.connect() as conn:
        orders = {o.cid: o for o in conn.execute(select(t.hedge_orders))}
        decided = [json.loads(line) for _, line in lines]
        decided = [d for d in decided if d["kind"] == "decision" and d.get("action") == "order"]
        assert set(orders) == {d["cid"] for d in decided} and len(orders) == hedger.orders_sent > 0
        on_exchange = {o.client_order_id: o for a in sim.accounts.values() for o in a.orders.values()}
        for cid, row in orders.items():
            placed = on_exchange[cid]
            assert row.status in ("closed", "expired", "canceled"), row
            assert Decimal(row.filled_e9) / 10**9 == placed.executed_qty, (row, placed)
            assert Decimal(row.qty_e9) / 10**9 == placed.orig_qty
        by_maker = audit_sql.recent(conn, maker="maker00", limit=1_000)
        assert by_maker and all(r["maker"] == "maker00" for r in by_maker)
        assert {r["kind"] for r in by_maker} >= {"decision", "request", "response"}
        assert [r["ts_ns"] for r in by_maker] == sorted((r["ts_ns"] for r in by_maker), reverse=True)
        assert len(audit_sql.recent(conn, limit=3)) == 3
        assert {o["maker"] for o in audit_sql.orders(conn, maker="maker01", limit=1_000)} == {"maker01"}
    engine.dispose()


def write_lines(log: AuditLog, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        log.write("decision", maker="m", market=0, action="note", i=i)


def test_restart_and_lost_notifications_reimport_exactly_the_missing_lines(tmp_path, db_url):
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    write_lines(log, 10)
    first = AuditSql(db_url, path)
    first.start(log.log_id, log.offset)  # the lines written before it started
    assert first.wait_caught_up(WAIT_S)
    write_lines(log, 5, 10)  # written while no importer listens: "lost" on a crash
    first.close()
    assert len(audit_rows(first.engine)) == 11  # the log_opened line and 10

    second = AuditSql(db_url, path)
    log.listener = second.notify
    second.start(log.log_id, log.offset)
    assert second.wait_caught_up(WAIT_S)
    assert second.lines == 5  # only what was missing
    write_lines(log, 2_500, 15)  # more than a batch, announced line by line
    assert second.wait_caught_up(WAIT_S)
    second.close()  # its thread stopped: the calls below are the only importer
    assert second.catch_up() == 0
    second.next_offset = 0  # as if it had forgotten: importing again changes nothing
    assert second.catch_up() == len(file_lines(path))
    rows = audit_rows(second.engine)
    assert [r.line_offset for r in rows] == [o for o, _ in file_lines(path)]
    assert [json.loads(r.record).get("i") for r in rows[1:]] == list(range(2_515))
    log.close()

    # A replaced file: a new log id, its rows beside the old ones (same offsets, other key).
    path.unlink()
    log = AuditLog(path)
    write_lines(log, 3)
    third = AuditSql(db_url, path)
    third.start(log.log_id, log.offset)
    assert third.wait_caught_up(WAIT_S)
    third.close()
    with third.engine.connect() as conn:
        counts = dict(conn.execute(select(t.hedge_audit.c.log_id, func.count())
                                   .group_by(t.hedge_audit.c.log_id)).all())
    assert counts == {rows[0].log_id: 2_516, log.log_id: 4}
    log.close()
    third.engine.dispose()


def test_a_torn_tail_is_ended_and_skipped(tmp_path):
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    write_lines(log, 2)
    log.close()
    with open(path, "ab") as f:
        f.write(b'{"ts":1.0,"kind":"decis')  # a power cut mid-line
    log = AuditLog(path)
    write_lines(log, 1, 2)
    importer = AuditSql(f"sqlite:///{tmp_path / 'db.sqlite'}", path)
    importer.start(log.log_id, log.offset)
    assert importer.wait_caught_up(WAIT_S)
    importer.close()
    assert importer.unparsable == 1
    assert [json.loads(r.record).get("i") for r in audit_rows(importer.engine)] == [None, 0, 1, 2]
    log.close()


def test_a_database_away_never_holds_the_writer_up(tmp_path):
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    away = AuditSql(f"sqlite:///{tmp_path / 'no such dir' / 'db.sqlite'}", path)
    log.listener = away.notify
    away.start(log.log_id, log.offset)
    write_lines(log, 2_000)  # each write returns at once; the file has every line
    assert away.wait_failures(2, WAIT_S)  # retried with backoff, never given up
    assert away.status()["lag_bytes"] == log.offset and away.lines == 0
    away.close()
    assert len(file_lines(path)) == 2_001
    # The database back: everything is imported, from the file.
    (tmp_path / "no such dir").mkdir()
    back = AuditSql(f"sqlite:///{tmp_path / 'no such dir' / 'db.sqlite'}", path)
    back.start(log.log_id, log.offset)
    assert back.wait_caught_up(WAIT_S)
    back.close()
    assert len(audit_rows(back.engine)) == 2_001
    log.close()
