"""The SQL read-model projection: journal events -> rows and per-agent KPIs, exactly once.

``SqlProjection.apply(records, after_seq)`` turns one batch into rows in memory, then writes
them in **one transaction** that also moves this projection's row of
``projection_checkpoints`` from ``after_seq`` to the batch's last seq (a compare-and-set: a
second writer, or a stale cache, fails the transaction instead of double-counting). A crash
anywhere leaves either the whole batch with its checkpoint, or neither.

Mutable rows (agents, KPIs, open RFQs, live quotes, open positions, the system accounts,
daily PnL) are cached in memory and written once per batch when changed; rows that ended are
written and leave the cache. The cache is only ever a copy of what is committed plus the
batch in flight: ``recover()`` drops it after a failure and the next batch reloads it.

Money moves only through the events' transfers, and this projection books money only from
them too (balances, margins, fees, funding, PnL, rewards), so its books equal the engine's.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from itertools import chain

from msgspec.structs import astuple

from sqlalchemy import Engine, create_engine, event, select, update

from engine import events as ev
from engine.units import div_half_even
from ledger.projections.sql import schema as t
from ledger.records import JournalRecord

NAME_DEFAULT = "sql"
NS_PER_DAY = 86_400 * 10**9
DAYS_PER_YEAR = 365  # crypto trades every day: Sharpe annualised by sqrt(365)
BPS = 10_000
SQLITE_CACHE_KIB = 64 * 1024  # page cache per connection: the indexes of a busy read model stay in memory
ACCOUNT = ev.ACCOUNT_NAMES
SYSTEM_ACCOUNTS = ("fees", "insurance", "external")
# Rows per SQLite INSERT statement: one statement step for many rows (fewer VDBE runs and
# driver calls per row); 100 rows of the widest table (positions, 27 columns) bind 2 700
# parameters, far below SQLite's 32 766.
ROWS_PER_STATEMENT = 100
_BALANCE_COLUMN = ("free_e6", "held_e6", "margin_long_e6", "margin_short_e6")  # by account (FREE..MARGIN_SHORT)
HELD, MARGIN_SHORT = ev.HELD, ev.MARGIN_SHORT  # accounts <= HELD are an agent's, <= MARGIN_SHORT a position's
_WITHIN_ONE_OWNER = frozenset({"release", "hold", "margin", "return"})  # transfer kinds that move no KPI

# The columns of each cached table that events change after the row's first write (the
# others are fixed at insert). An upsert sets only these: a column missing here would keep a
# stale value in the database (tests/projections/test_contract.py's small batches catch it).
MUTABLE = {
    "agents": ("free_e6", "held_e6", "deposited_e6", "withdrawn_e6"),
    "system_accounts": ("balance_e6",),
    "rfqs": ("status", "quotes", "ended_seq", "ended_ts_ns", "position_id"),
    "quotes": ("outcome", "ended_seq", "ended_ts_ns"),
    "positions": ("open_size_e6", "margin_long_e6", "margin_short_e6", "status", "exit_price_e8", "ended_seq",
                  "ended_ts_ns", "pnl_long_e6", "funding_long_to_short_e6", "reward_e6"),
    "agent_kpis": tuple(c.name for c in t.agent_kpis.columns if c.name != "agent"),
    "agent_daily_pnl": ("net_pnl_e6",),
}

# The tables only ever appended to, and the tables whose rows are cached while they may change.
APPENDED = (t.fills, t.funding_payments, t.closes, t.liquidations, t.transfers, t.oracle_prices)
CACHED = (t.agents, t.system_accounts, t.rfqs, t.quotes, t.positions, t.agent_kpis)

# Quote outcomes by how the maker behaved (docs/projections.md, "quote reliability").
STOOD = frozenset({"filled", "not_selected", "rfq_closed"})  # live until the RFQ resolved
PULLED = frozenset({"cancelled", "replaced", "session_ended"})  # withdrawn before an accept
EXPIRED = frozenset({"expired"})  # let lapse before an accept


# PostgreSQL commits a batch without waiting for its WAL flush (SQLite's synchronous=NORMAL,
# the same trade): a server crash may lose the last batches, but each lost batch loses its
# checkpoint with it (one transaction), so the runner projects it again — exactly once holds.
# The read model is a rebuildable copy of the journal; the journal is what is fsynced.
PG_COMMIT = "SET LOCAL synchronous_commit = off"


def make_engine(url: str) -> Engine:
    """An SQLAlchemy engine for ``url``; SQLite files get WAL and NORMAL sync (durable
    against a process crash, one fsync per checkpoint of the WAL; after a power loss the
    last batches may be gone, each with its checkpoint, and are projected again)."""
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")  # negative: KiB, not pages
            cursor.execute("PRAGMA temp_store=MEMORY")
            cursor.close()
    return engine


def _marker(engine: Engine) -> str:
    """The driver's parameter marker (sqlite3: ``?``; psycopg: ``%s``)."""
    return "?" if engine.dialect.paramstyle == "qmark" else "%s"


class _Statement:
    """One table's rows into the database in bulk, the cheapest way each dialect has.

    Rows come as tuples in column order, or as dicts whose keys are the table's columns **in
    column order**: a dict's values are then its parameters as they are, without a lookup
    per column (looking up 27 columns of a position cost more than SQLite's insert of it).
    They reach the driver's own cursor, in the transaction that moved the checkpoint
    (SQLAlchemy's per-row parameter processing cost more than the database's own work here,
    and its per-statement work ~40 µs a call: 10% of a small live batch).

    - SQLite: ``ROWS_PER_STATEMENT`` rows per ``INSERT ... VALUES (..), (..), ...`` (one
      statement step for many rows, not one each), by ``executemany``;
    - PostgreSQL: append-only rows by ``COPY`` (one stream, not a round trip per row); rows
      that may exist already are copied into a temporary table of the same shape, then
      upserted from it in one ``INSERT ... SELECT``.

    An upsert (``ON CONFLICT (pk) DO UPDATE``) sets only the table's ``MUTABLE`` columns: both
    databases rewrite an index entry whenever its column is SET, even to the same value, and
    the fixed columns (an agent, a market, a stamp) carry the indexes.
    """

    __slots__ = ("columns", "sql_one", "sql_many", "copy", "upsert_from_stage", "stage_ddl")

    def __init__(self, engine: Engine, table, mutable: tuple[str, ...] | None) -> None:
        self.columns = columns = [c.name for c in table.columns]
        names = ", ".join(columns)
        conflict = ""
        if mutable is not None:
            keys = ", ".join(c.name for c in table.primary_key.columns)
            assert set(mutable) <= set(columns), (table.name, mutable)
            conflict = f" ON CONFLICT ({keys}) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in mutable)}"
        self.copy = self.upsert_from_stage = self.stage_ddl = self.sql_one = self.sql_many = None
        if engine.dialect.name == "postgresql":
            if mutable is None:
                self.copy = f"COPY {table.name} ({names}) FROM STDIN"
            else:
                stage = f"stage_{table.name}"
                self.stage_ddl = (f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} "
                                  f"(LIKE {table.name} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
                self.copy = f"COPY {stage} ({names}) FROM STDIN"
                self.upsert_from_stage = f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {stage}{conflict}"
            return
        marker = _marker(engine)
        row = f"({', '.join([marker] * len(columns))})"
        # "WHERE true" is not needed with VALUES (only SQLite's INSERT ... SELECT ... ON CONFLICT).
        self.sql_one = f"INSERT INTO {table.name} ({names}) VALUES {row}{conflict}"
        self.sql_many = f"INSERT INTO {table.name} ({names}) VALUES {', '.join([row] * ROWS_PER_STATEMENT)}{conflict}"

    def execute(self, cursor, rows: list) -> None:
        if type(rows[0]) is dict:
            # Once a call: a row built with its keys out of order would write into the wrong columns.
            assert list(rows[0]) == self.columns, (list(rows[0]), self.columns)
            rows = [row.values() for row in rows]
        if self.copy is not None:
            self._copy(cursor, rows)
            return
        whole = len(rows) - len(rows) % ROWS_PER_STATEMENT
        if whole:
            cursor.executemany(self.sql_many, [tuple(chain.from_iterable(rows[i:i + ROWS_PER_STATEMENT]))
                                               for i in range(0, whole, ROWS_PER_STATEMENT)])
        if whole < len(rows):
            cursor.executemany(self.sql_one, [tuple(row) for row in rows[whole:]])

    def _copy(self, cursor, rows: list) -> None:
        if self.stage_ddl is not None:
            cursor.execute(self.stage_ddl)
        with cursor.copy(self.copy) as copy:
            for row in rows:
                copy.write_row(tuple(row))
        if self.upsert_from_stage is not None:
            cursor.execute(self.upsert_from_stage)


class _Cache:
    """Rows of one mutable table by primary key: which are new in this batch (not in the
    database yet), which changed in it, which ended."""

    __slots__ = ("rows", "new", "dirty", "ended")

    def __init__(self) -> None:
        self.rows: dict = {}
        self.new: set = set()
        self.dirty: set = set()
        self.ended: set = set()

    def add(self, key, row: dict) -> None:
        """A row the database does not hold yet (its key first seen in this batch)."""
        self.rows[key] = row
        self.new.add(key)

    def touch(self, key) -> dict:
        self.dirty.add(key)
        return self.rows[key]

    def take(self) -> tuple[list[dict], list[dict]]:
        """``(new rows, changed rows the database holds)`` of the batch; the ended leave."""
        rows = self.rows
        new = [rows[key] for key in self.new]
        changed = [rows[key] for key in self.dirty if key not in self.new]
        for key in self.ended:
            del rows[key]
        self.new.clear()
        self.dirty.clear()
        self.ended.clear()
        return new, changed


def _new_kpis(agent: str) -> dict:
    row = {c.name: 0 for c in t.agent_kpis.columns}
    row.update(agent=agent, win_rate_bps=None, sharpe_daily=None, fill_ratio_bps=None, reliability_bps=None)
    return row


class SqlProjection:
    """The read models of ``ledger.projections.sql.schema`` for one database URL."""

    def __init__(self, url: str, *, symbols: Iterable[str] = (), name: str = NAME_DEFAULT,
                 engine: Engine | None = None, migrate: bool = True, coalesce_s: float = 0.0) -> None:
        """``coalesce_s``: how long the live runner lets a part batch wait for more events
        (``Runner._coalesce``); a batch costs ~1 ms of CPU beyond its events (the
        transaction, the pages its commit writes), so batching at any load pays."""
        self.name = name
        self.coalesce_s = coalesce_s
        self.url = url
        self.symbols = list(symbols)
        self.engine = engine or make_engine(url)
        if migrate:
            from ledger.projections.sql.migrate import upgrade

            upgrade(self.engine)
        # By table name: the appended and cached tables' inserts of new rows, and the upserts of
        # rows the database holds already (on PostgreSQL an upsert goes through a staging
        # table, ~3x the cost of copying a new row straight into its table).
        self._inserts = {table.name: _Statement(self.engine, table, None) for table in chain(APPENDED, CACHED)}
        self._upserts = {table.name: _Statement(self.engine, table, MUTABLE[table.name])
                         for table in chain(CACHED, (t.agent_daily_pnl,))}
        self._postgresql = self.engine.dialect.name == "postgresql"
        marker = _marker(self.engine)
        # By the driver's cursor, like the rows: SQLAlchemy's statement building cost ~0.3 ms a batch.
        self._move_checkpoint = (f"UPDATE {t.projection_checkpoints.name} SET seq = {marker}, ts_ns = {marker} "
                                 f"WHERE name = {marker} AND seq = {marker}")
        self._loaded = False

    # -- the runner's contract ---------------------------------------------------------

    def load_checkpoint(self) -> int:
        with self.engine.begin() as conn:
            seq = conn.execute(select(t.projection_checkpoints.c.seq)
                               .where(t.projection_checkpoints.c.name == self.name)).scalar()
            if seq is None:
                conn.execute(t.projection_checkpoints.insert().values(name=self.name, seq=0, ts_ns=0))
                seq = 0
        return seq

    def recover(self) -> None:
        self._loaded = False

    def apply(self, records: list[JournalRecord], after_seq: int) -> int:
        if not self._loaded:
            self._load()
        self._begin_batch()
        last_seq, last_ts_ns = after_seq, 0
        try:
            for record in records:
                for e in record.events:
                    if e.seq <= after_seq:
                        continue
                    handler = self._handlers.get(type(e))
                    if handler is not None:
                        self.seq, self.ts_ns = e.seq, e.ts_ns  # what rows the handler writes are stamped with
                        handler(self, e)
                    last_seq = e.seq
                last_ts_ns = record.ts_ns
            self._finish_kpis()
            self._write_rows(self.rows_of_batch(), after_seq, last_seq, last_ts_ns)
        except BaseException:
            self._loaded = False  # the cache may hold the failed batch: reload it from the database
            raise
        return last_seq

    def write_rows(self, rows_by_table: list[tuple[str, bool, list]], after_seq: int, last_seq: int,
                   last_ts_ns: int) -> None:
        """The database's part of a batch: in one transaction, move the checkpoint from
        ``after_seq`` to ``last_seq`` and write ``rows_by_table`` (``rows_of_batch``'s). Also
        timed alone, on rows made beforehand, by ``bench projections`` (the database's floor):
        called so, it leaves this projection's cache behind the checkpoint, so the cache is
        dropped (the next ``apply`` reloads it)."""
        self._loaded = False
        self._write_rows(rows_by_table, after_seq, last_seq, last_ts_ns)

    def _write_rows(self, rows_by_table: list[tuple[str, bool, list]], after_seq: int, last_seq: int,
                    last_ts_ns: int) -> None:
        with self.engine.begin() as conn:
            cursor = conn.connection.dbapi_connection.cursor()  # the driver's, in conn's transaction
            try:
                if self._postgresql:
                    cursor.execute(PG_COMMIT)
                # The checkpoint first: a compare-and-set that also locks the row (PostgreSQL),
                # so a second writer waits, then finds the seq moved and writes nothing.
                cursor.execute(self._move_checkpoint, (last_seq, last_ts_ns, self.name, after_seq))
                if cursor.rowcount != 1:
                    raise RuntimeError(f"projection {self.name}: checkpoint is not at seq {after_seq} "
                                       "(another writer, or a rebuild under a running venue?)")
                for name, upsert, rows in rows_by_table:
                    (self._upserts if upsert else self._inserts)[name].execute(cursor, rows)
            finally:
                cursor.close()

    # -- the cache ---------------------------------------------------------------------

    def _load(self) -> None:
        self.agents, self.system, self.kpis = _Cache(), _Cache(), _Cache()
        self.rfqs, self.quotes, self.positions = _Cache(), _Cache(), _Cache()
        # agent -> UTC day -> net PnL: the rows of agent_daily_pnl, and the Sharpe's input.
        self.days: dict[str, dict[int, int]] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(select(t.agents)).mappings():
                self.agents.rows[row["agent"]] = dict(row)
            for row in conn.execute(select(t.system_accounts)).mappings():
                self.system.rows[row["account"]] = dict(row)
            for row in conn.execute(select(t.agent_kpis)).mappings():
                self.kpis.rows[row["agent"]] = dict(row)
            for row in conn.execute(select(t.rfqs).where(t.rfqs.c.status == "open")).mappings():
                self.rfqs.rows[row["rfq_id"]] = dict(row)
            for row in conn.execute(select(t.quotes).where(t.quotes.c.outcome == "live")).mappings():
                self.quotes.rows[row["quote_id"]] = dict(row)
            for row in conn.execute(select(t.positions).where(t.positions.c.status == "open")).mappings():
                self.positions.rows[row["position_id"]] = dict(row)
            for agent, day, net_pnl_e6 in conn.execute(select(t.agent_daily_pnl)):
                self.days.setdefault(agent, {})[day] = net_pnl_e6
        for account in SYSTEM_ACCOUNTS:
            if account not in self.system.rows:
                self.system.add(account, {"account": account, "balance_e6": 0})
        self._loaded = True

    def _begin_batch(self) -> None:
        self.inserts: dict[str, list[dict]] = {table.name: [] for table in APPENDED}
        self.days_changed: set[tuple[str, int]] = set()  # (agent, day) of self.days moved in this batch
        self.seq = 0
        self.ts_ns = 0

    def rows_of_batch(self) -> list[tuple[str, bool, list]]:
        """``(table name, upsert?, rows)`` of the batch booked, in the order they are written:
        the appended rows, then the cached tables' new rows (inserted) and changed rows
        (upserted); those that ended leave the cache. A row is a tuple, or a dict whose
        values are in column order (``_Statement``)."""
        out = [(name, False, rows) for name, rows in self.inserts.items() if rows]
        for table, cache in ((t.agents, self.agents), (t.system_accounts, self.system), (t.rfqs, self.rfqs),
                             (t.quotes, self.quotes), (t.positions, self.positions), (t.agent_kpis, self.kpis)):
            new, changed = cache.take()
            if new:
                out.append((table.name, False, new))
            if changed:
                out.append((table.name, True, changed))
        if self.days_changed:
            out.append((t.agent_daily_pnl.name, True,
                        [(agent, day, self.days[agent][day]) for agent, day in self.days_changed]))
        return out

    # -- helpers -----------------------------------------------------------------------

    def _symbol(self, market: int) -> str:
        return self.symbols[market] if 0 <= market < len(self.symbols) else f"market-{market}"

    def _agent(self, agent: str) -> dict:
        row = self.agents.rows.get(agent)
        if row is None:
            row = {"agent": agent, "first_seq": self.seq, "first_ts_ns": self.ts_ns, "free_e6": 0, "held_e6": 0,
                   "deposited_e6": 0, "withdrawn_e6": 0}
            self.agents.add(agent, row)
            self.kpis.add(agent, _new_kpis(agent))
        self.agents.dirty.add(agent)
        return row

    def _kpi(self, agent: str) -> dict:
        """The agent's KPI row, marked changed (its ratios are recomputed at the batch's end)."""
        kpis = self.kpis
        row = kpis.rows.get(agent)
        if row is None:
            self._agent(agent)
            row = kpis.rows[agent]
        kpis.dirty.add(agent)
        row["updated_seq"] = self.seq
        return row

    def _owner(self, account: int, ref) -> str:
        """Whose money an account is: the agent of FREE/HELD, a margin's side's agent."""
        if account <= ev.HELD:
            return ref
        position = self.positions.rows[ref]
        return position["long_agent"] if account == ev.MARGIN_LONG else position["short_agent"]

    def _pnl(self, agent: str, delta_e6: int, column: str, amount_e6: int) -> None:
        """``delta_e6`` of net PnL for ``agent`` now (and ``amount_e6`` added to its KPI
        ``column``, the figure that moved it): the curve, its drawdown, the day's bucket."""
        k = self._kpi(agent)
        k[column] += amount_e6
        net = k["net_pnl_e6"] = k["net_pnl_e6"] + delta_e6
        if net > k["net_pnl_peak_e6"]:
            k["net_pnl_peak_e6"] = net
        elif k["net_pnl_peak_e6"] - net > k["max_drawdown_e6"]:
            k["max_drawdown_e6"] = k["net_pnl_peak_e6"] - net
        day = self.ts_ns // NS_PER_DAY
        days = self.days.get(agent)
        if days is None:
            days = self.days[agent] = {}
        days[day] = days.get(day, 0) + delta_e6
        self.days_changed.add((agent, day))

    def _transfers(self, e, transfers: list[ev.Transfer]) -> None:
        """Book every transfer: balances, margins, the books table, and the KPIs it moves."""
        tag = type(e).__struct_config__.tag
        add = self.inserts["transfers"].append
        seq, ts_ns = e.seq, e.ts_ns
        agent_rows, agents_dirty = self.agents.rows, self.agents.dirty
        position_rows, positions_dirty = self.positions.rows, self.positions.dirty
        for index, tr in enumerate(transfers):
            debit, debit_ref, credit, credit_ref, amount, kind = astuple(tr)
            add((seq, index, ts_ns, tag, ACCOUNT[debit], str(debit_ref), ACCOUNT[credit], str(credit_ref), amount,
                 kind))  # the columns of schema.transfers, in order
            # Both sides' balances: an agent's free/held, a position's margin, or a system account.
            if debit <= HELD:
                row = agent_rows.get(debit_ref) or self._agent(debit_ref)
                agents_dirty.add(debit_ref)
                row[_BALANCE_COLUMN[debit]] -= amount
            elif debit <= MARGIN_SHORT:
                positions_dirty.add(debit_ref)
                position_rows[debit_ref][_BALANCE_COLUMN[debit]] -= amount
            else:
                self.system.touch(ACCOUNT[debit])["balance_e6"] -= amount
            if credit <= HELD:
                row = agent_rows.get(credit_ref) or self._agent(credit_ref)
                agents_dirty.add(credit_ref)
                row[_BALANCE_COLUMN[credit]] += amount
            elif credit <= MARGIN_SHORT:
                positions_dirty.add(credit_ref)
                position_rows[credit_ref][_BALANCE_COLUMN[credit]] += amount
            else:
                self.system.touch(ACCOUNT[credit])["balance_e6"] += amount
            if kind not in _WITHIN_ONE_OWNER:
                self._kpis_of_transfer(e, kind, amount, debit, debit_ref, credit, credit_ref)

    def _kpis_of_transfer(self, e, kind: str, amount: int, debit: int, debit_ref, credit: int, credit_ref) -> None:
        """What a transfer between owners (a fee, funding, PnL, a reward) does to the KPIs."""
        if kind == "fee":
            agent = self._owner(debit, debit_ref)
            self._pnl(agent, -amount, "fees_paid_e6", amount)
        elif kind == "funding":
            self._funding(e, debit_ref, amount if debit == ev.MARGIN_LONG else -amount)
        elif kind == "pnl" or kind == "insurance":
            position = self.positions.touch(credit_ref)
            position["pnl_long_e6"] += amount if credit == ev.MARGIN_LONG else -amount
            winner = self._owner(credit, credit_ref)
            self._pnl(winner, amount, "realized_pnl_e6", amount)
            if kind == "pnl":
                loser = self._owner(debit, debit_ref)
                self._pnl(loser, -amount, "realized_pnl_e6", -amount)
        elif kind == "reward":
            self.positions.touch(debit_ref)["reward_e6"] += amount
            loser = self._owner(debit, debit_ref)
            self._pnl(loser, -amount, "liquidation_penalty_e6", amount)
            if credit == ev.FREE:
                self._pnl(credit_ref, amount, "keeper_rewards_e6", amount)

    def _funding(self, e, position_id: int, long_to_short_e6: int, boundary_ns: int | None = None) -> None:
        if not long_to_short_e6:
            return
        position = self.positions.touch(position_id)
        position["funding_long_to_short_e6"] += long_to_short_e6
        long_agent, short_agent = position["long_agent"], position["short_agent"]
        payer, receiver = (long_agent, short_agent) if long_to_short_e6 > 0 else (short_agent, long_agent)
        amount = abs(long_to_short_e6)
        source = "boundary" if boundary_ns is not None else (
            "liquidation" if type(e) is ev.PositionLiquidated else "close")
        self.inserts["funding_payments"].append({
            "seq": e.seq, "position_id": position_id, "ts_ns": e.ts_ns, "source": source, "boundary_ns": boundary_ns,
            "payer": payer, "receiver": receiver, "amount_e6": amount, "long_to_short_e6": long_to_short_e6})
        self._pnl(payer, -amount, "funding_paid_e6", amount)
        self._pnl(receiver, amount, "funding_received_e6", amount)

    def _position_ended(self, position: dict, status: str, liquidated_side: str | None = None) -> None:
        """A position's last close: its status, and each side's win or loss."""
        position["status"] = status
        position["open_size_e6"] = 0
        position["ended_seq"], position["ended_ts_ns"] = self.seq, self.ts_ns
        self.positions.ended.add(position["position_id"])
        taker_long = position["taker_side"] == "long"
        fee_long = position["taker_fee_e6"] if taker_long else position["maker_fee_e6"]
        fee_short = position["maker_fee_e6"] if taker_long else position["taker_fee_e6"]
        pnl, funding = position["pnl_long_e6"], position["funding_long_to_short_e6"]
        reward = position["reward_e6"]
        net_long = pnl - funding - fee_long - (reward if liquidated_side == "long" else 0)
        net_short = -pnl + funding - fee_short - (reward if liquidated_side == "short" else 0)
        for agent, net in ((position["long_agent"], net_long), (position["short_agent"], net_short)):
            k = self._kpi(agent)
            k["positions_ended"] += 1
            if net > 0:
                k["positions_won"] += 1

    def _volume(self, agent: str, size_e6: int) -> None:
        self._kpi(agent)["volume_e6"] += size_e6

    def _quote_ended(self, quote_id: int, outcome: str) -> None:
        quote = self.quotes.touch(quote_id)
        quote["outcome"] = outcome
        quote["ended_seq"], quote["ended_ts_ns"] = self.seq, self.ts_ns
        self.quotes.ended.add(quote_id)
        k = self._kpi(quote["maker"])
        if outcome == "filled":
            k["quotes_filled"] += 1
        if outcome in STOOD:
            k["quotes_stood"] += 1
        elif outcome in PULLED:
            k["quotes_pulled"] += 1
        elif outcome in EXPIRED:
            k["quotes_expired"] += 1

    def _finish_kpis(self) -> None:
        """The ratios and the Sharpe of every agent whose figures moved in this batch."""
        for agent in self.kpis.new | self.kpis.dirty:
            k = self.kpis.rows[agent]
            ended = k["positions_ended"]
            k["win_rate_bps"] = div_half_even(k["positions_won"] * BPS, ended) if ended else None
            submitted = k["quotes_submitted"]
            k["fill_ratio_bps"] = div_half_even(k["quotes_filled"] * BPS, submitted) if submitted else None
            resolved = k["quotes_stood"] + k["quotes_pulled"] + k["quotes_expired"]
            k["reliability_bps"] = div_half_even(k["quotes_stood"] * BPS, resolved) if resolved else None
        for agent in {agent for agent, _day in self.days_changed}:
            k = self.kpis.touch(agent)
            k["days"], k["sharpe_daily"] = sharpe_of_days(self.days.get(agent, {}))

    # -- events ------------------------------------------------------------------------

    def _deposited(self, e: ev.Deposited) -> None:
        self._agent(e.agent)["deposited_e6"] += e.amount_e6
        self._transfers(e, e.transfers)

    def _withdrawn(self, e: ev.Withdrawn) -> None:
        self._agent(e.agent)["withdrawn_e6"] += e.amount_e6
        self._transfers(e, e.transfers)

    def _rfq_opened(self, e: ev.RfqOpened) -> None:
        self.rfqs.add(e.rfq_id, {
            "rfq_id": e.rfq_id, "seq": e.seq, "ts_ns": e.ts_ns, "trader": e.trader, "market": e.market,
            "market_symbol": self._symbol(e.market), "side": e.side, "size_e6": e.size_e6, "leverage": e.leverage,
            "max_funding_rate_e9": e.max_funding_rate_e9, "duration": e.duration, "expires_ns": e.expires_ns,
            "margin_e6": e.margin_e6, "fee_e6": e.fee_e6, "auto_accept": e.auto_accept,
            "target_rate_e9": e.target_rate_e9, "status": "open", "quotes": 0, "ended_seq": None,
            "ended_ts_ns": None, "position_id": None})
        self._transfers(e, e.transfers)

    def _quote_submitted(self, e: ev.QuoteSubmitted) -> None:
        self.quotes.add(e.quote_id, {
            "quote_id": e.quote_id, "rfq_id": e.rfq_id, "seq": e.seq, "ts_ns": e.ts_ns, "maker": e.maker,
            "funding_rate_e9": e.funding_rate_e9, "collateral_e6": e.collateral_e6, "fee_e6": e.fee_e6,
            "expires_ns": e.expires_ns, "outcome": "live", "ended_seq": None, "ended_ts_ns": None})
        self.rfqs.touch(e.rfq_id)["quotes"] += 1
        self._kpi(e.maker)["quotes_submitted"] += 1
        self._transfers(e, e.transfers)

    def _quote_released(self, e: ev.QuoteReleased) -> None:
        self._quote_ended(e.quote_id, e.reason)
        self._transfers(e, e.transfers)

    def _rfq_closed(self, e: ev.RfqClosed) -> None:
        rfq = self.rfqs.touch(e.rfq_id)
        rfq["status"], rfq["ended_seq"], rfq["ended_ts_ns"] = e.reason, e.seq, e.ts_ns
        self.rfqs.ended.add(e.rfq_id)
        self._transfers(e, e.transfers)

    def _position_opened(self, e: ev.PositionOpened) -> None:
        self.positions.add(e.position_id, {
            "position_id": e.position_id, "rfq_id": e.rfq_id, "quote_id": e.quote_id, "seq": e.seq,
            "ts_ns": e.ts_ns, "market": e.market, "market_symbol": self._symbol(e.market),
            "long_agent": e.long_agent, "short_agent": e.short_agent, "taker_side": e.taker_side,
            "size_e6": e.size_e6, "open_size_e6": e.size_e6, "entry_price_e8": e.entry_price_e8,
            "funding_rate_e9": e.funding_rate_e9, "margin_long_e6": 0, "margin_short_e6": 0,
            "taker_fee_e6": e.taker_fee_e6, "maker_fee_e6": e.maker_fee_e6, "duration": e.duration,
            "expires_ns": e.expires_ns, "status": "open", "exit_price_e8": None, "ended_seq": None,
            "ended_ts_ns": None, "pnl_long_e6": 0, "funding_long_to_short_e6": 0, "reward_e6": 0})
        rfq = self.rfqs.touch(e.rfq_id)
        rfq["status"], rfq["ended_seq"], rfq["ended_ts_ns"], rfq["position_id"] = \
            "filled", e.seq, e.ts_ns, e.position_id
        self.rfqs.ended.add(e.rfq_id)
        self._quote_ended(e.quote_id, "filled")
        for quote_id in e.released_quote_ids:
            self._quote_ended(quote_id, "not_selected")
        trader = e.long_agent if e.taker_side == "long" else e.short_agent
        for agent in (e.long_agent, e.short_agent):
            k = self._kpi(agent)
            k["volume_e6"] += e.size_e6
            k["positions_opened"] += 1
        self.inserts["fills"].append({
            "seq": e.seq, "ts_ns": e.ts_ns, "position_id": e.position_id, "market": e.market, "kind": "open",
            "agent": trader, "price_e8": e.entry_price_e8, "size_e6": e.size_e6, "remaining_size_e6": e.size_e6,
            "pnl_long_e6": 0, "funding_long_to_short_e6": 0, "fee_e6": e.taker_fee_e6 + e.maker_fee_e6})
        self._transfers(e, e.transfers)

    def _funding_settled(self, e: ev.FundingSettled) -> None:
        rows = self.inserts["transfers"]
        tag = type(e).__struct_config__.tag
        for index, (position_id, amount) in enumerate(zip(e.position_ids, e.long_to_short_e6)):
            if not amount:
                continue
            debit, credit = (ev.MARGIN_LONG, ev.MARGIN_SHORT) if amount > 0 else (ev.MARGIN_SHORT, ev.MARGIN_LONG)
            rows.append((e.seq, index, e.ts_ns, tag, ACCOUNT[debit], str(position_id), ACCOUNT[credit],
                         str(position_id), abs(amount), "funding"))
            position = self.positions.touch(position_id)
            position["margin_long_e6"] -= amount
            position["margin_short_e6"] += amount
            self._funding(e, position_id, amount, e.boundary_ns)

    def _position_closed(self, e: ev.PositionClosed) -> None:
        position = self.positions.touch(e.position_id)
        self.inserts["closes"].append({
            "seq": e.seq, "ts_ns": e.ts_ns, "position_id": e.position_id, "agent": e.agent, "reason": e.reason,
            "fraction_bps": e.fraction_bps, "price_e8": e.price_e8, "closed_size_e6": e.closed_size_e6,
            "remaining_size_e6": e.remaining_size_e6, "funding_long_to_short_e6": e.funding_long_to_short_e6,
            "pnl_long_e6": e.pnl_long_e6, "insurance_e6": e.insurance_e6, "bad_debt_e6": e.bad_debt_e6})
        self.inserts["fills"].append({
            "seq": e.seq, "ts_ns": e.ts_ns, "position_id": e.position_id, "market": position["market"],
            "kind": "expiry" if e.reason == "expiry" else "close", "agent": e.agent, "price_e8": e.price_e8,
            "size_e6": e.closed_size_e6, "remaining_size_e6": e.remaining_size_e6, "pnl_long_e6": e.pnl_long_e6,
            "funding_long_to_short_e6": e.funding_long_to_short_e6, "fee_e6": 0})
        for agent in (position["long_agent"], position["short_agent"]):
            self._volume(agent, e.closed_size_e6)
        position["open_size_e6"] = e.remaining_size_e6
        position["exit_price_e8"] = e.price_e8
        self._transfers(e, e.transfers)
        if e.remaining_size_e6 == 0:
            self._position_ended(position, "expired" if e.reason == "expiry" else "closed")

    def _position_liquidated(self, e: ev.PositionLiquidated) -> None:
        position = self.positions.touch(e.position_id)
        size_e6 = position["open_size_e6"]
        liquidated, counterparty = ((position["long_agent"], position["short_agent"]) if e.side == "long"
                                    else (position["short_agent"], position["long_agent"]))
        self.inserts["liquidations"].append({
            "seq": e.seq, "ts_ns": e.ts_ns, "position_id": e.position_id, "market": position["market"],
            "side": e.side, "liquidated_agent": liquidated, "counterparty": counterparty, "keeper": e.keeper,
            "by_engine": not e.keeper, "price_e8": e.price_e8, "oracle_stale": e.oracle_stale, "size_e6": size_e6,
            "funding_long_to_short_e6": e.funding_long_to_short_e6, "pnl_long_e6": e.pnl_long_e6,
            "insurance_e6": e.insurance_e6, "bad_debt_e6": e.bad_debt_e6, "reward_e6": e.reward_e6})
        self.inserts["fills"].append({
            "seq": e.seq, "ts_ns": e.ts_ns, "position_id": e.position_id, "market": position["market"],
            "kind": "liquidation", "agent": e.keeper, "price_e8": e.price_e8, "size_e6": size_e6,
            "remaining_size_e6": 0, "pnl_long_e6": e.pnl_long_e6,
            "funding_long_to_short_e6": e.funding_long_to_short_e6, "fee_e6": 0})
        for agent in (position["long_agent"], position["short_agent"]):
            self._volume(agent, size_e6)
        position["exit_price_e8"] = e.price_e8
        self._transfers(e, e.transfers)
        self._position_ended(position, "liquidated", e.side)

    def _margin_changed(self, e: ev.MarginChanged) -> None:
        self._transfers(e, e.transfers)

    def _oracle_updated(self, e: ev.OracleUpdated) -> None:
        self.inserts["oracle_prices"].append({
            "seq": e.seq, "ts_ns": e.ts_ns, "market": e.market, "price_e8": e.price_e8, "conf_e8": e.conf_e8,
            "publish_ns": e.publish_ns, "source": e.source})

    # LiquidationWatch and Checkpoint move no money and make no row; unknown (newer) event
    # types are skipped the same way: the read model books only what it knows.
    _handlers = {
        ev.Deposited: _deposited, ev.Withdrawn: _withdrawn, ev.RfqOpened: _rfq_opened,
        ev.QuoteSubmitted: _quote_submitted, ev.QuoteReleased: _quote_released, ev.RfqClosed: _rfq_closed,
        ev.PositionOpened: _position_opened, ev.FundingSettled: _funding_settled,
        ev.PositionClosed: _position_closed, ev.PositionLiquidated: _position_liquidated,
        ev.MarginChanged: _margin_changed, ev.OracleUpdated: _oracle_updated,
    }

    # -- tools -------------------------------------------------------------------------

    def reset(self) -> None:
        """Empty every table and set the checkpoint to 0 (a rebuild from seq 0 follows)."""
        with self.engine.begin() as conn:
            for table in t.MODEL_TABLES:
                conn.execute(table.delete())
            conn.execute(update(t.projection_checkpoints).where(t.projection_checkpoints.c.name == self.name)
                         .values(seq=0, ts_ns=0))
        self._loaded = False

    def close(self) -> None:
        self.engine.dispose()


def sharpe_of_days(days: dict[int, int]) -> tuple[int, float | None]:
    """(days spanned, annualised Sharpe of daily net PnL) over every UTC day from the first
    active one to the last (quiet days count as 0). Sharpe is scale-free, so on a constant
    capital it is the Sharpe of daily returns. None below 2 days or with no variance."""
    if not days:
        return 0, None
    first, last = min(days), max(days)
    n = last - first + 1
    if n < 2:
        return n, None
    total = sum(days.values())
    squares = sum(v * v for v in days.values())
    # Exact integers until the last step: n² var = n Σx² − (Σx)².
    numerator = n * squares - total * total
    if numerator <= 0:
        return n, None
    std_e6 = math.sqrt(numerator / (n * (n - 1)))
    return n, (total / n) / std_e6 * math.sqrt(DAYS_PER_YEAR)
