"""state-at equals a fresh execution to that point; export round-trips the ledger."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import events as ev
from engine.apply import apply
from engine.core import execute
from engine.state import State, state_hash
from replay import cli, source
from replay.export import batches, export
from replay.rebuild import rebuild
from replay.schema import SCHEMAS, TABLES
from replay.source import ReplayJournal
from replay.state_at import parse_at, state_at

DOCS = Path(__file__).resolve().parents[2] / "docs" / "replay.md"


def _executed_to(session, seq: int) -> State:
    """Re-execute the journal's commands from scratch until ``seq`` is reached (the live path)."""
    state = State(session.config)
    for record in ReplayJournal(session.data_dir).records():
        if record.first_seq > seq:
            break
        execute(state, record.command, record.ts_ns, record.cmd_id)
    return state


def test_state_at_seq_matches_execution(session_journal):
    s = session_journal
    records = list(ReplayJournal(s.data_dir).records())
    seq = next(r.last_seq for r in records if r.last_seq >= 2_000 and r.events)
    state, report = state_at(s.data_dir, seq, s.config)
    assert state.last_seq == seq == report.seq
    assert state_hash(state) == state_hash(_executed_to(s, seq))
    assert report.insurance_e6 == state.insurance_e6
    assert {p.position_id for p in report.positions} == set(state.position_row)
    assert sum(a.free_e6 + a.held_e6 + a.margin_e6 for a in report.agents) + state.fees_e6 + state.insurance_e6 \
        == state.deposited_e6 - state.withdrawn_e6


def test_state_at_time(session_journal, capsys):
    s = session_journal
    _, ts = parse_at("2026-01-01T08:00:00Z")
    state, report = state_at(s.data_dir, "2026-01-01T08:00:00Z", s.config)
    records = list(ReplayJournal(s.data_dir).records())
    expected = max(r.last_seq for r in records if r.ts_ns <= ts)
    assert state.last_seq == expected and report.ts_ns <= ts
    assert cli.main(["state", str(s.data_dir), "--at", "2026-01-01T08:00:00", "--json", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["seq"] == expected and len(out["agents"]) == len(state.agent_row)


@given(target=st.integers(0, 10**6), by_time=st.booleans(), read_ahead=st.booleans())
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_rebuild_applies_exactly_the_events_up_to_its_seq_or_time(session_journal, monkeypatch, target, by_time,
                                                                   read_ahead):
    """rebuild (verify's runs, read ahead or not) against the records applied one by one:
    every event up to the seq, or every record stamped at or before the time."""
    s = session_journal
    monkeypatch.setattr(source, "READ_AHEAD_BYTES_MIN", 1 if read_ahead else 1 << 60)
    records = list(ReplayJournal(s.data_dir).records())
    first_ts, last_ts = records[0].ts_ns, records[-1].ts_ns
    seq = ts_ns = None
    if by_time:
        ts_ns = first_ts + target * (last_ts - first_ts) // 10**6
    else:
        seq = 1 + target % s.live.events
    expected = State(s.config)
    for record in records:
        if ts_ns is not None and record.ts_ns > ts_ns:
            break
        for event in record.events:
            if seq is None or event.seq <= seq:
                apply(expected, event)
    state = rebuild(ReplayJournal(s.data_dir), s.config, seq=seq, ts_ns=ts_ns)
    assert state.last_seq == expected.last_seq
    assert state_hash(state) == state_hash(expected)


@pytest.fixture(scope="module")
def exported(session_journal, tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    result = export(session_journal.data_dir, out / "pq", "parquet", session_journal.config)
    csv = export(session_journal.data_dir, out / "csv", "csv", session_journal.config)
    return result, csv


def test_export_row_counts_equal_the_ledger(session_journal, exported):
    s = session_journal
    result, csv = exported
    assert result.rows == csv.rows
    kinds = {}
    for e in ReplayJournal(s.data_dir).events():
        kinds[type(e)] = kinds.get(type(e), 0) + 1
    state = State(s.config)
    from replay.rebuild import rebuild
    state = rebuild(ReplayJournal(s.data_dir), s.config)
    assert result.rows["rfqs"] == kinds[ev.RfqOpened] == state.next_rfq_id - 1
    assert result.rows["quotes"] == kinds[ev.QuoteSubmitted] == state.next_quote_id - 1
    assert result.rows["positions"] == kinds[ev.PositionOpened] == state.next_position_id - 1
    assert result.rows["oracle"] == kinds[ev.OracleUpdated]
    assert result.rows["oracle_switches"] == kinds.get(ev.OracleSourceSwitched, 0)
    assert result.rows["liquidations"] == kinds[ev.PositionLiquidated] > 0
    assert result.rows["fills"] == kinds[ev.PositionOpened] + kinds[ev.PositionClosed] + kinds[ev.PositionLiquidated]
    positions = pl.read_parquet(result.files["positions"])
    assert positions.filter(pl.col("status") == "open").height == state.positions.live


def test_export_money_sums_equal_the_ledger(session_journal, exported):
    s = session_journal
    result, _ = exported
    from replay.rebuild import rebuild
    state = rebuild(ReplayJournal(s.data_dir), s.config)
    t = pl.read_parquet(result.files["transfers"])
    credits = t.group_by("credit_account", "credit_agent").agg(pl.col("amount_e6").sum())
    debits = t.group_by("debit_account", "debit_agent").agg(pl.col("amount_e6").sum())

    def balance(account: str, agent: str | None) -> int:
        def pick(df, a, g):
            rows = df.filter((pl.col(a) == account) & (pl.col(g).is_null() if agent is None else pl.col(g) == agent))
            return int(rows["amount_e6"].sum()) if rows.height else 0
        return pick(credits, "credit_account", "credit_agent") - pick(debits, "debit_account", "debit_agent")

    for agent, row in state.agent_row.items():
        assert balance("free", agent) == state.agents.free_e6[row], agent
        assert balance("held", agent) == state.agents.held_e6[row], agent
    assert balance("fees", None) == state.fees_e6
    assert balance("insurance", None) == state.insurance_e6 > 0
    assert balance("external", None) == state.external_e6
    # Margins per open position, from the ledger alone.
    for account, column in (("margin_long", "margin_long_e6"), ("margin_short", "margin_short_e6")):
        got = (t.filter(pl.col("credit_account") == account).group_by("credit_position_id").agg(pl.col("amount_e6").sum())
               .rename({"credit_position_id": "position_id", "amount_e6": "in"})
               .join(t.filter(pl.col("debit_account") == account).group_by("debit_position_id")
                     .agg(pl.col("amount_e6").sum()).rename({"debit_position_id": "position_id", "amount_e6": "out"}),
                     on="position_id", how="left").fill_null(0))
        by_id = {pid: i - o for pid, i, o in got.iter_rows()}
        for position_id, row in state.position_row.items():
            assert by_id[position_id] == getattr(state.positions, column)[row]
    # Funding: the funding table sums to the funding transfers (signed long -> short).
    funding = pl.read_parquet(result.files["funding"])
    f = t.filter(pl.col("kind") == "funding")
    signed = int(f.filter(pl.col("debit_account") == "margin_long")["amount_e6"].sum()) - int(
        f.filter(pl.col("debit_account") == "margin_short")["amount_e6"].sum())
    assert int(funding["long_to_short_e6"].sum()) == signed
    assert funding.filter(pl.col("source") == "boundary").height > 0
    liq = pl.read_parquet(result.files["liquidations"])
    assert int(liq["bad_debt_e6"].sum()) + int(pl.read_parquet(result.files["fills"]).filter(
        pl.col("kind") != "liquidation")["bad_debt_e6"].sum()) == state.bad_debt_e6


def test_tables_are_typed_and_load_in_pandas_and_polars(exported):
    result, csv = exported
    for name in TABLES:
        table = pq.read_table(result.files[name])
        assert table.schema.equals(SCHEMAS[name], check_metadata=False)
        frame = pd.read_parquet(result.files[name])
        assert len(frame) == result.rows[name]
        assert pl.read_csv(csv.files[name]).height == result.rows[name]
    assert str(pd.read_parquet(result.files["oracle"])["price_e8"].dtype) == "int64"


def test_arrow_batches_give_numpy_columns(session_journal):
    prices = [b.column("price_e8").to_numpy() for name, b in batches(session_journal.data_dir, tables=("oracle",))
              if name == "oracle"]
    assert sum(len(p) for p in prices) > 100 and prices[0].dtype.kind == "i"


def test_docs_list_every_column():
    text = DOCS.read_text()
    for name, schema in SCHEMAS.items():
        assert f"### `{name}`" in text
        for f in schema:
            assert f"| `{f.name}` |" in text, (name, f.name)
