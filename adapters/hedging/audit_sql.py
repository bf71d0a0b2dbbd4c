"""The audit trail in the SQL read model: the JSONL file (``audit.py``) projected into
``hedge_audit`` (one row per line) and ``hedge_orders`` (one row per order), off the hedger's loop.

**The queue is the file.** The hedger only appends its line and tells the importer the new end
(``notify``: one integer stored, an event set — it never waits on the database). The importer's
thread reads the lines between what SQL holds and that end, at most ``BATCH_LINES_MAX`` per
transaction, and commits them with their orders. So nothing is dropped at any bound: a slow or
unreachable database only makes SQL lag behind the file (``status()['lag_bytes']``); the thread
retries with backoff (``RETRY_S_MIN``..``RETRY_S_MAX``) and catches up. Memory is bounded by one
batch (``BATCH_LINES_MAX`` × ``audit.LINE_BYTES_MAX``); the file is bounded by the disk.

**Idempotent by key.** A row's key is (the file's ``log_id``, the line's byte offset); inserts
skip a key already there. At start the importer resumes after the last row of this log id, so a
restart — or a crash between the file and the database — re-imports exactly the missing lines.
Secrets never reach SQL: the lines are redacted before they are written to the file.
"""

from __future__ import annotations

import json
import logging
import threading
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import ccxt
from sqlalchemy import Engine, bindparam, select, update

from adapters.hedging.audit import LINE_BYTES_MAX
from ledger.projections.sql import schema as t
from ledger.projections.sql.model import make_engine

log = logging.getLogger("agentperp.hedging.audit")

BATCH_LINES_MAX = 1_000  # lines per SQL transaction (and in memory at once)
READ_BYTES_MAX = BATCH_LINES_MAX * (LINE_BYTES_MAX + 2)  # one read of the file; holds ≥ 1 whole line
RETRY_S_MIN, RETRY_S_MAX = 0.5, 30.0  # a failing database: backoff doubling between the two
CLOSE_TIMEOUT_S = 10.0  # close(): the last lines imported, at most this long
LIMIT_DEFAULT, LIMIT_MAX = 50, 1_000  # rows one read returns
ERROR_CHARS_MAX = 64  # the error column
ORDER_CALL = "create_order"


def _names(cls) -> set[str]:
    return {cls.__name__}.union(*(_names(sub) for sub in cls.__subclasses__()))


# An order whose answer was one of these may have executed (the hedger resolves it by its id);
# any other error answer refused it. A 429 or a late timestamp refuses it before it reaches the
# book (as the hedger's ``_send`` has it).
UNKNOWN_OUTCOME_ERRORS = frozenset(_names(ccxt.NetworkError) - _names(ccxt.DDoSProtection) - _names(ccxt.InvalidNonce))


def _insert_ignoring_duplicates(engine: Engine, table):
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table).on_conflict_do_nothing()


def _scaled(value, exponent: int) -> int | None:
    """A decimal quantity or price (str or number) as an integer × 10**exponent, half-even."""
    if value is None or value == "":
        return None
    return int((Decimal(str(value)) * 10**exponent).to_integral_value(ROUND_HALF_EVEN))


def _short(value, chars: int = 32) -> str | None:
    return None if value is None else str(value)[:chars]


class AuditSql:
    """Import the audit file at ``path`` into the read model at ``url``. Nothing is read or
    written before ``start``: the thread migrates the schema to the newest revision first (a
    database away at start is retried like any other failure, the hedger never waits for it)."""

    def __init__(self, url: str, path: Path | str, *, engine: Engine | None = None, migrate: bool = True) -> None:
        self.path = Path(path)
        self.engine = engine or make_engine(url)
        self._migrate = migrate
        self._insert_audit = _insert_ignoring_duplicates(self.engine, t.hedge_audit)
        self._insert_order = _insert_ignoring_duplicates(self.engine, t.hedge_orders)
        self._update_order = (update(t.hedge_orders).where(t.hedge_orders.c.cid == bindparam("b_cid"))
                              .values(status=bindparam("b_status"), filled_e9=bindparam("b_filled_e9"),
                                      error=bindparam("b_error"), updated_ts_ns=bindparam("b_ts_ns")))
        self.log_id = ""
        self.next_offset = 0  # every line before it is in SQL
        self.known_end = 0  # every line before it is whole in the file (the hedger said so)
        self.lines = 0  # imported by this process
        self.unparsable = 0  # lines skipped (a torn tail)
        self.failures = 0
        self.last_error = ""
        self._wake = threading.Event()
        self._progress = threading.Condition()  # notified after every attempt to import
        self._stop = threading.Event()  # close(): a last import, and no backoff wait
        self._thread: threading.Thread | None = None

    # -- life cycle ----------------------------------------------------------------------
    def start(self, log_id: str, known_end: int) -> None:
        """Import in a thread from after the last row of ``log_id`` to ``known_end``, then
        whatever ``notify`` announces."""
        self.log_id, self.known_end = log_id, known_end
        self._thread = threading.Thread(target=self._run, name="hedge-audit-sql", daemon=True)
        self._thread.start()
        self._wake.set()

    def notify(self, end_offset: int) -> None:
        """The file is whole up to ``end_offset`` (called on the hedger's loop; never blocks)."""
        self.known_end = end_offset
        self._wake.set()

    def close(self) -> None:
        """Import what is left (bounded by ``CLOSE_TIMEOUT_S``), stop the thread, close the engine."""
        if self._thread is not None:
            self._stop.set()
            self._wake.set()
            self._thread.join(CLOSE_TIMEOUT_S)
            self._thread = None
        self.engine.dispose()

    def wait_caught_up(self, timeout_s: float) -> bool:
        """Block until SQL holds every line announced so far (True), or ``timeout_s`` passed."""
        with self._progress:
            return self._progress.wait_for(lambda: self.next_offset >= self.known_end, timeout_s)

    def wait_failures(self, count: int, timeout_s: float) -> bool:
        """Block until ``count`` import attempts have failed (True), or ``timeout_s`` passed."""
        with self._progress:
            return self._progress.wait_for(lambda: self.failures >= count, timeout_s)

    def status(self) -> dict:
        return {"lines": self.lines, "lag_bytes": max(0, self.known_end - self.next_offset),
                "failures": self.failures, "last_error": self.last_error, "unparsable": self.unparsable}

    def _run(self) -> None:
        delay_s = RETRY_S_MIN
        resumed = False
        while True:
            self._wake.wait()
            self._wake.clear()
            try:
                if not resumed:
                    if self._migrate:
                        from ledger.projections.sql.migrate import upgrade

                        upgrade(self.engine)
                    self.next_offset = self.resume_offset()
                    resumed = True
                self.catch_up()
                delay_s = RETRY_S_MIN
                self._signal()
            except Exception as error:  # the database is away or refused: the file keeps every line
                self.failures += 1
                self.last_error = f"{type(error).__name__}: {str(error)[:200]}"
                self._signal()
                log.warning("hedge audit: SQL import failed (retried in %.1f s): %s", delay_s, self.last_error)
                if self._stop.wait(delay_s):  # not self._wake: a notify must not cut the backoff short
                    return
                delay_s = min(delay_s * 2, RETRY_S_MAX)
                self._wake.set()
                continue
            if self._stop.is_set():
                return

    def _signal(self) -> None:
        with self._progress:
            self._progress.notify_all()

    # -- importing -----------------------------------------------------------------------
    def resume_offset(self) -> int:
        """The offset after the last line of ``log_id`` in SQL (0: none yet)."""
        a = t.hedge_audit.c
        with self.engine.connect() as conn:
            row = conn.execute(select(a.line_offset, a.line_bytes).where(a.log_id == self.log_id)
                               .order_by(a.line_offset.desc()).limit(1)).first()
        return 0 if row is None else row.line_offset + row.line_bytes

    def catch_up(self) -> int:
        """Import every whole line from ``next_offset`` to ``known_end``; the lines imported."""
        imported = 0
        with open(self.path, "rb") as f:
            while self.next_offset < self.known_end:
                f.seek(self.next_offset)
                chunk = f.read(min(self.known_end - self.next_offset, READ_BYTES_MAX))
                lines = chunk.split(b"\n")[:-1][:BATCH_LINES_MAX]  # whole lines only
                assert lines, f"no whole line at offset {self.next_offset} of {self.path}"
                self._import(self.next_offset, lines)
                self.next_offset += sum(len(line) + 1 for line in lines)
                imported += len(lines)
                self.lines += len(lines)
        return imported

    def _import(self, offset: int, lines: list[bytes]) -> None:
        rows, orders, updates = [], [], []
        for line in lines:
            start, offset = offset, offset + len(line) + 1
            try:
                record = json.loads(line)
                ts_ns = round(float(record["ts"]) * 1e6) * 1_000
                kind = str(record["kind"])
            except (ValueError, KeyError, TypeError):
                self.unparsable += 1
                continue
            error = record.get("error")
            rows.append({"log_id": self.log_id, "line_offset": start, "line_bytes": len(line) + 1, "ts_ns": ts_ns,
                         "kind": kind[:16], "maker": _short(record.get("maker"), 64),
                         "market": record.get("market") if isinstance(record.get("market"), int) else None,
                         "exchange": _short(record.get("exchange")), "call": _short(record.get("call")),
                         "cid": _short(record.get("cid"), 40), "action": _short(record.get("action")),
                         "error": _short(error, ERROR_CHARS_MAX), "record": line.decode("utf-8", "replace")})
            self._order_of(record, kind, ts_ns, orders, updates)
        with self.engine.begin() as conn:
            if rows:
                conn.execute(self._insert_audit, rows)
            if orders:
                conn.execute(self._insert_order, orders)
            if updates:
                conn.execute(self._update_order, updates)

    @staticmethod
    def _order_of(record: dict, kind: str, ts_ns: int, orders: list, updates: list) -> None:
        """What a line says about an order: a new row (the decision), or its new status."""
        cid = record.get("cid")
        if not cid:
            return
        if kind == "decision" and record.get("action") == "order":
            orders.append({"cid": cid, "maker": record["maker"], "market": record["market"],
                           "exchange": record["exchange"], "symbol": record["symbol"], "side": record["side"],
                           "qty_e9": _scaled(record["qty"], 9), "price_e8": _scaled(record["price"], 8),
                           "seq": record["seq"], "sent_ts_ns": int(record["ts_ms"]) * 1_000_000, "status": "sent",
                           "filled_e9": None, "error": None, "updated_ts_ns": ts_ns})
        elif kind == "response" and record.get("call") == ORDER_CALL:
            error = record.get("error")
            status = (("unknown" if error in UNKNOWN_OUTCOME_ERRORS else "refused") if error
                      else _short(record.get("status"), 16) or "sent")
            updates.append({"b_cid": cid, "b_status": status,
                            "b_filled_e9": _scaled(record.get("filled"), 9), "b_error": _short(error, ERROR_CHARS_MAX),
                            "b_ts_ns": ts_ns})
        elif kind == "resolved":
            found = record.get("outcome") == "found"
            updates.append({"b_cid": cid, "b_status": "resolved" if found else "never_placed",
                            "b_filled_e9": _scaled(record.get("filled", 0), 9), "b_error": None, "b_ts_ns": ts_ns})


# -- reads (the CLI and GET /hedging/audit) -----------------------------------------------------

def recent(conn, *, maker: str | None = None, kind: str | None = None, limit: int = LIMIT_DEFAULT) -> list[dict]:
    """The newest audit lines (by the hedger's clock), optionally of one maker or kind."""
    assert 1 <= limit <= LIMIT_MAX, f"limit {limit} outside [1, {LIMIT_MAX}]"
    a = t.hedge_audit.c
    query = select(a.ts_ns, a.kind, a.maker, a.market, a.exchange, a.call, a.cid, a.action, a.error, a.record)
    if maker is not None:
        query = query.where(a.maker == maker)
    if kind is not None:
        query = query.where(a.kind == kind)
    rows = conn.execute(query.order_by(a.ts_ns.desc(), a.line_offset.desc()).limit(limit)).mappings()
    return [{**{k: v for k, v in row.items() if k != "record"}, "record": json.loads(row["record"])} for row in rows]


def orders(conn, *, maker: str | None = None, limit: int = LIMIT_DEFAULT) -> list[dict]:
    """The newest hedge orders, optionally of one maker."""
    assert 1 <= limit <= LIMIT_MAX, f"limit {limit} outside [1, {LIMIT_MAX}]"
    o = t.hedge_orders.c
    query = select(t.hedge_orders)
    if maker is not None:
        query = query.where(o.maker == maker)
    return [dict(row) for row in conn.execute(query.order_by(o.sent_ts_ns.desc(), o.cid.desc()).limit(limit)).mappings()]
