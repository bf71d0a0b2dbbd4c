"""``export``: the journal as analysis tables (``replay.schema``) in Parquet or CSV, and the
same tables as a stream of Arrow record batches for the Python API.

Rows come from the journaled events alone (no state is rebuilt): ``oracle``, ``fills``,
``funding``, ``liquidations`` and ``transfers`` in seq order; ``rfqs``, ``quotes`` and
``positions`` are lifecycle rows written when the object ends (filled, expired, closed,
liquidated ...), so in the order they ended, followed by those still open at the end of the
journal. Sort by the id column for id order.

``transfers`` is the whole double-entry ledger: every ``Transfer`` of every event, plus the
funding of each ``FundingSettled`` (columnar in the event) expanded to one row per
non-zero position amount, so summing it per account gives every balance.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from engine import events as ev
from engine.markets import EngineConfig
from replay.rebuild import progress_bar
from replay.schema import SCHEMAS, TABLES
from replay.source import ReplayJournal, gc_paused

FORMATS = ("parquet", "csv")
FLUSH_ROWS = 65_536  # rows per record batch (and per Parquet row group chunk)


class _Table:
    __slots__ = ("name", "schema", "columns", "rows")

    def __init__(self, name: str) -> None:
        self.name = name
        self.schema = SCHEMAS[name]
        self.columns: dict[str, list] = {f.name: [] for f in self.schema if f.name != "time"}
        self.rows = 0

    def add(self, row: tuple) -> None:
        for column, value in zip(self.columns.values(), row):
            column.append(value)
        self.rows += 1

    def pending(self) -> int:
        return len(self.columns["seq" if "seq" in self.columns else next(iter(self.columns))])

    def take(self) -> pa.RecordBatch:
        arrays = []
        for f in self.schema:
            if f.name == "time":
                arrays.append(pa.array(self.columns["ts_ns"], pa.int64()).cast(f.type))
            else:
                arrays.append(pa.array(self.columns[f.name], f.type))
        for column in self.columns.values():
            column.clear()
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)


class _Builder:
    """Turns events into rows. One instance per pass over a journal."""

    def __init__(self, symbols: list[str], tables: tuple[str, ...]) -> None:
        self.symbols = symbols
        self.tables = {name: _Table(name) for name in TABLES}
        self.wanted = set(tables)
        self.rfqs: dict[int, list] = {}  # open lifecycle rows, completed when they end
        self.quotes: dict[int, list] = {}
        self.positions: dict[int, list] = {}
        self.size_e6: dict[int, int] = {}
        self.parties: dict[int, tuple[str, str, int]] = {}  # position -> (long, short, market)
        self.rfq_position: dict[int, int] = {}
        self.events = 0

    # -- rows -------------------------------------------------------------------------

    def record(self, cmd_id: int, events: list) -> None:
        for e in events:
            handler = _HANDLERS.get(type(e))
            if handler is not None:
                handler(self, e)
            if "transfers" in self.wanted:
                self._transfers(e)
        self.events += len(events)

    def _transfers(self, e) -> None:
        transfers = getattr(e, "transfers", None)
        t = self.tables["transfers"]
        if transfers:
            tag = type(e).__struct_config__.tag
            for index, x in enumerate(transfers):
                t.add((e.seq, e.ts_ns, e.cmd_id, tag, index, ev.ACCOUNT_NAMES[x.debit], *_ref(x.debit, x.debit_ref),
                       ev.ACCOUNT_NAMES[x.credit], *_ref(x.credit, x.credit_ref), x.amount_e6, x.kind))
        elif type(e) is ev.FundingSettled:
            tag = type(e).__struct_config__.tag
            for index, (position_id, amount) in enumerate(zip(e.position_ids, e.long_to_short_e6)):
                if amount > 0:
                    t.add((e.seq, e.ts_ns, e.cmd_id, tag, index, "margin_long", None, position_id, "margin_short",
                           None, position_id, amount, "funding"))
                elif amount < 0:
                    t.add((e.seq, e.ts_ns, e.cmd_id, tag, index, "margin_short", None, position_id, "margin_long",
                           None, position_id, -amount, "funding"))

    def _rfq_opened(self, e: ev.RfqOpened) -> None:
        self.rfqs[e.rfq_id] = [e.rfq_id, e.seq, e.ts_ns, e.cmd_id, e.trader, e.market, self.symbols[e.market], e.side,
                               e.size_e6, e.leverage, e.max_funding_rate_e9, e.duration, e.expires_ns, e.margin_e6,
                               e.fee_e6, e.auto_accept, e.target_rate_e9, e.client_id]

    def _end_rfq(self, rfq_id: int, outcome: str, e, position_id) -> None:
        row = self.rfqs.pop(rfq_id)
        self.tables["rfqs"].add((*row, outcome, e.seq, e.ts_ns, position_id))

    def _rfq_closed(self, e: ev.RfqClosed) -> None:
        self._end_rfq(e.rfq_id, e.reason, e, None)

    def _quote_submitted(self, e: ev.QuoteSubmitted) -> None:
        self.quotes[e.quote_id] = [e.quote_id, e.rfq_id, e.seq, e.ts_ns, e.cmd_id, e.maker, e.funding_rate_e9,
                                   e.collateral_e6, e.fee_e6, e.expires_ns, e.client_id]

    def _end_quote(self, quote_id: int, outcome: str, seq: int) -> None:
        self.tables["quotes"].add((*self.quotes.pop(quote_id), outcome, seq))

    def _quote_released(self, e: ev.QuoteReleased) -> None:
        self._end_quote(e.quote_id, e.reason, e.seq)

    def _position_opened(self, e: ev.PositionOpened) -> None:
        symbol = self.symbols[e.market]
        self._end_quote(e.quote_id, "filled", e.seq)
        for quote_id in e.released_quote_ids:
            self._end_quote(quote_id, "not_selected", e.seq)
        self._end_rfq(e.rfq_id, "filled", e, e.position_id)
        self.positions[e.position_id] = [
            e.position_id, e.rfq_id, e.quote_id, e.seq, e.ts_ns, e.cmd_id, e.market, symbol, e.long_agent,
            e.short_agent, e.taker_side, e.size_e6, e.entry_price_e8, e.oracle_conf_e8, e.oracle_publish_ns,
            e.funding_rate_e9, e.margin_long_e6, e.margin_short_e6, e.taker_fee_e6, e.maker_fee_e6, e.duration,
            e.expires_ns, e.auto_accepted, 0, 0]  # the last two: pnl_long_e6, funding (accumulated)
        self.size_e6[e.position_id] = e.size_e6
        self.parties[e.position_id] = (e.long_agent, e.short_agent, e.market)
        trader = e.long_agent if e.taker_side == "long" else e.short_agent
        self.tables["fills"].add((e.seq, e.ts_ns, e.cmd_id, e.position_id, e.market, symbol, "open", trader,
                                  e.entry_price_e8, e.size_e6, e.size_e6, 0, 0, e.taker_fee_e6 + e.maker_fee_e6, 0, 0))

    def _funding_row(self, e, position_id: int, source: str, boundary_ns, amount: int) -> None:
        self.tables["funding"].add((e.seq, e.ts_ns, e.cmd_id, position_id, source, boundary_ns, amount))
        self.positions[position_id][-1] += amount

    def _funding_settled(self, e: ev.FundingSettled) -> None:
        for position_id, amount in zip(e.position_ids, e.long_to_short_e6):
            self._funding_row(e, position_id, "boundary", e.boundary_ns, amount)

    def _end_position(self, position_id: int, status: str, e) -> None:
        row = self.positions.pop(position_id)
        self.tables["positions"].add((*row[:-2], status, e.seq, e.ts_ns, row[-2], row[-1]))
        del self.size_e6[position_id]

    def _position_closed(self, e: ev.PositionClosed) -> None:
        self._funding_row(e, e.position_id, "close", None, e.funding_long_to_short_e6)
        self.positions[e.position_id][-2] += e.pnl_long_e6
        market = self.parties[e.position_id][2]
        kind = "expiry" if e.reason == "expiry" else "close"
        self.tables["fills"].add((e.seq, e.ts_ns, e.cmd_id, e.position_id, market, self.symbols[market], kind,
                                  e.agent, e.price_e8, e.closed_size_e6, e.remaining_size_e6, e.pnl_long_e6,
                                  e.funding_long_to_short_e6, 0, e.insurance_e6, e.bad_debt_e6))
        self.size_e6[e.position_id] = e.remaining_size_e6
        if e.remaining_size_e6 == 0:
            self._end_position(e.position_id, "expired" if e.reason == "expiry" else "closed", e)

    def _position_liquidated(self, e: ev.PositionLiquidated) -> None:
        self._funding_row(e, e.position_id, "liquidation", None, e.funding_long_to_short_e6)
        self.positions[e.position_id][-2] += e.pnl_long_e6
        long_agent, short_agent, market = self.parties[e.position_id]
        symbol = self.symbols[market]
        size = self.size_e6[e.position_id]
        loser, other = (long_agent, short_agent) if e.side == "long" else (short_agent, long_agent)
        self.tables["liquidations"].add((e.seq, e.ts_ns, e.cmd_id, e.position_id, market, symbol, e.side, loser, other,
                                         e.keeper, e.keeper == "", e.price_e8, e.publish_ns, e.oracle_stale, size,
                                         e.funding_long_to_short_e6, e.pnl_long_e6, e.insurance_e6, e.bad_debt_e6,
                                         e.reward_e6))
        self.tables["fills"].add((e.seq, e.ts_ns, e.cmd_id, e.position_id, market, symbol, "liquidation", e.keeper,
                                  e.price_e8, size, 0, e.pnl_long_e6, e.funding_long_to_short_e6, 0, e.insurance_e6,
                                  e.bad_debt_e6))
        self._end_position(e.position_id, "liquidated", e)

    def _oracle_updated(self, e: ev.OracleUpdated) -> None:
        self.tables["oracle"].add((e.seq, e.ts_ns, e.cmd_id, e.market, self.symbols[e.market], e.price_e8, e.conf_e8,
                                   e.publish_ns, e.source))

    def _oracle_source_switched(self, e: ev.OracleSourceSwitched) -> None:
        self.tables["oracle_switches"].add((e.seq, e.ts_ns, e.cmd_id, e.market, self.symbols[e.market], e.from_source,
                                            e.to_source, e.reason))

    def finish(self) -> None:
        """Write the lifecycle rows of what is still open at the end of the journal."""
        for row in self.rfqs.values():
            self.tables["rfqs"].add((*row, "open", None, None, None))
        for row in self.quotes.values():
            self.tables["quotes"].add((*row, "live", None))
        for row in self.positions.values():
            self.tables["positions"].add((*row[:-2], "open", None, None, row[-2], row[-1]))
        self.rfqs.clear()
        self.quotes.clear()
        self.positions.clear()

    def ready(self, minimum: int) -> Iterator[tuple[str, pa.RecordBatch]]:
        for name, table in self.tables.items():
            if name in self.wanted and table.pending() >= minimum and table.pending() > 0:
                yield name, table.take()
            elif name not in self.wanted:
                for column in table.columns.values():
                    column.clear()


def _ref(account: int, ref) -> tuple:
    if account in (ev.FREE, ev.HELD):
        return ref, None
    if account in (ev.MARGIN_LONG, ev.MARGIN_SHORT):
        return None, ref
    return None, None


_HANDLERS = {
    ev.RfqOpened: _Builder._rfq_opened, ev.RfqClosed: _Builder._rfq_closed,
    ev.QuoteSubmitted: _Builder._quote_submitted, ev.QuoteReleased: _Builder._quote_released,
    ev.PositionOpened: _Builder._position_opened, ev.FundingSettled: _Builder._funding_settled,
    ev.PositionClosed: _Builder._position_closed, ev.PositionLiquidated: _Builder._position_liquidated,
    ev.OracleUpdated: _Builder._oracle_updated, ev.OracleSourceSwitched: _Builder._oracle_source_switched,
}


def batches(path: Path | str, config: EngineConfig | None = None, *, tables: tuple[str, ...] = TABLES,
            progress: bool | None = False, flush_rows: int = FLUSH_ROWS) -> Iterator[tuple[str, pa.RecordBatch]]:
    """Stream ``(table name, pyarrow.RecordBatch)`` of the export tables over ``path``.

    The columnar Python API: ``batch.column("price_e8").to_numpy()`` is a numpy array."""
    unknown = set(tables) - set(TABLES)
    if unknown:
        raise ValueError(f"unknown tables {sorted(unknown)}; choose from {list(TABLES)}")
    journal = ReplayJournal(path)
    config = journal.config(config)  # the journal's own; ``config`` only for one without genesis
    builder = _Builder([m.symbol for m in config.markets], tuple(tables))
    with gc_paused(), progress_bar(journal.last_seq, "export", progress) as bar:
        for batch in journal.event_record_batches():
            for record in batch:
                builder.record(record.cmd_id, record.events)
            bar.update(builder.events - bar.n)
            del batch, record  # freed before the next batch decodes (replay.source._decoded_batches)
            yield from builder.ready(flush_rows)
    builder.finish()
    yield from builder.ready(0)


@dataclass
class ExportResult:
    directory: str
    format: str
    rows: dict[str, int]
    files: dict[str, str]
    events: int
    seconds: float

    @property
    def rows_per_s(self) -> float:
        return sum(self.rows.values()) / self.seconds if self.seconds else 0.0


def export(path: Path | str, out_dir: Path | str, fmt: str = "parquet", config: EngineConfig | None = None, *,
           tables: tuple[str, ...] = TABLES, progress: bool | None = False) -> ExportResult:
    """Write each table to ``out_dir/{table}.parquet`` (or ``.csv``); return row counts."""
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r}: choose from {FORMATS}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    writers: dict = {}
    files = {name: str(out_dir / f"{name}.{fmt}") for name in tables}
    rows = {name: 0 for name in tables}
    started = time.perf_counter()
    events = 0
    try:
        for name in tables:  # every table gets a file, even an empty one
            schema = SCHEMAS[name]
            writers[name] = (pq.ParquetWriter(files[name], schema) if fmt == "parquet"
                             else pcsv.CSVWriter(files[name], schema))
        for name, batch in batches(path, config, tables=tables, progress=progress):
            writers[name].write_batch(batch)
            rows[name] += batch.num_rows
    finally:
        for writer in writers.values():
            writer.close()
    events = ReplayJournal(path).last()[1]
    return ExportResult(str(out_dir), fmt, rows, files, events, time.perf_counter() - started)
