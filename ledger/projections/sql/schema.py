"""The SQL read models' tables (SQLAlchemy 2 Core). Money is integer: BIGINT with its unit
in the column name (``_e6`` micro-USDC, ``_e8`` 1e-8 USD, ``_e9`` rate per 8h × 1e9, ``_ns``
ns since the Unix epoch, ``_bps`` basis points). The one float is ``sharpe_daily``, a
statistic computed from integers (never money).

This module is the *current* schema; ``migrations/versions`` holds each revision's frozen
DDL (alembic). A change here needs a new revision (``docs/projections.md``, "Migrations").
"""

from __future__ import annotations

from sqlalchemy import (BigInteger, Boolean, Column, Float, Index, Integer, MetaData, SmallInteger, String,
                        Table, Text)

metadata = MetaData()

KEY = String(64)  # an agent's base58 key (44 characters at most) or a system account's name
SHORT = String(32)


# A single-column integer key is SQLite's rowid only when declared INTEGER (BIGINT would add a
# second B-tree beside the table); SQLite's INTEGER is 64-bit anyway.
ID = BigInteger().with_variant(Integer, "sqlite")
# Composite keys: the table is its key's B-tree (no rowid, no second index) on SQLite.
CLUSTERED = {"sqlite_with_rowid": False}


def _i64(name: str, **kw) -> Column:
    kind = ID if kw.get("primary_key") else BigInteger
    return Column(name, kind, nullable=kw.pop("nullable", False), **kw)


def _stamp() -> list[Column]:
    return [_i64("seq"), _i64("ts_ns")]


# The tracking table: one row per projection, written in the same transaction as its rows.
projection_checkpoints = Table(
    "projection_checkpoints", metadata,
    Column("name", SHORT, primary_key=True),
    _i64("seq"),  # every event with seq <= this is in the tables
    _i64("ts_ns"),  # journal time of that event's record
    **CLUSTERED,
)

agents = Table(
    "agents", metadata,
    Column("agent", KEY, primary_key=True),
    _i64("first_seq"), _i64("first_ts_ns"),
    _i64("free_e6"), _i64("held_e6"),
    _i64("deposited_e6"), _i64("withdrawn_e6"),
    **CLUSTERED,
)

# The system accounts of the double-entry books: fees, insurance, external.
system_accounts = Table(
    "system_accounts", metadata,
    Column("account", SHORT, primary_key=True),
    _i64("balance_e6"),
    **CLUSTERED,
)

rfqs = Table(
    "rfqs", metadata,
    _i64("rfq_id", primary_key=True, autoincrement=False), *_stamp(),
    Column("trader", KEY, nullable=False), Column("market", SmallInteger, nullable=False),
    Column("market_symbol", SHORT, nullable=False), Column("side", String(8), nullable=False),
    _i64("size_e6"), Column("leverage", Integer, nullable=False), _i64("max_funding_rate_e9"),
    Column("duration", String(16), nullable=False), _i64("expires_ns"), _i64("margin_e6"), _i64("fee_e6"),
    Column("auto_accept", Boolean, nullable=False), _i64("target_rate_e9", nullable=True),
    Column("status", String(16), nullable=False),  # open | filled | expired | cancelled
    Column("quotes", Integer, nullable=False),  # quotes received
    _i64("ended_seq", nullable=True), _i64("ended_ts_ns", nullable=True), _i64("position_id", nullable=True),
)

quotes = Table(
    "quotes", metadata,
    _i64("quote_id", primary_key=True, autoincrement=False), _i64("rfq_id"), *_stamp(),
    Column("maker", KEY, nullable=False), _i64("funding_rate_e9"), _i64("collateral_e6"), _i64("fee_e6"),
    _i64("expires_ns"),
    # live | filled | not_selected | rfq_closed (stood until the RFQ resolved) |
    # cancelled | replaced | session_ended (pulled) | expired
    Column("outcome", String(16), nullable=False),
    _i64("ended_seq", nullable=True), _i64("ended_ts_ns", nullable=True),
    Index("ix_quotes_maker", "maker"),
)

positions = Table(
    "positions", metadata,
    _i64("position_id", primary_key=True, autoincrement=False), _i64("rfq_id"), _i64("quote_id"), *_stamp(),
    Column("market", SmallInteger, nullable=False), Column("market_symbol", SHORT, nullable=False),
    Column("long_agent", KEY, nullable=False), Column("short_agent", KEY, nullable=False),
    Column("taker_side", String(8), nullable=False),
    _i64("size_e6"),  # at open
    _i64("open_size_e6"),  # still open (0 once ended)
    _i64("entry_price_e8"), _i64("funding_rate_e9"),
    _i64("margin_long_e6"), _i64("margin_short_e6"),  # now (from the transfers)
    _i64("taker_fee_e6"), _i64("maker_fee_e6"),
    Column("duration", String(16), nullable=False), _i64("expires_ns"),
    Column("status", String(16), nullable=False),  # open | closed | expired | liquidated
    _i64("exit_price_e8", nullable=True),  # price of the last close or the liquidation
    _i64("ended_seq", nullable=True), _i64("ended_ts_ns", nullable=True),
    _i64("pnl_long_e6"),  # PnL money moved to the long margin (negative: from it), incl. insurance
    _i64("funding_long_to_short_e6"),  # funding moved from the long margin to the short one
    _i64("reward_e6"),  # liquidation reward paid from the liquidated side's margin
    Index("ix_positions_long", "long_agent", "position_id"),
    Index("ix_positions_short", "short_agent", "position_id"),
    # No index on status: every close would move the row in it (a third of the upsert's
    # cost); status filters ride the agent indexes or the primary key's order.
)

fills = Table(
    "fills", metadata,
    _i64("seq", primary_key=True, autoincrement=False), _i64("ts_ns"), _i64("position_id"),
    Column("market", SmallInteger, nullable=False),
    Column("kind", String(16), nullable=False),  # open | close | expiry | liquidation
    Column("agent", KEY, nullable=False),  # trader (open), closer (close), keeper (liquidation), "" (expiry, engine)
    _i64("price_e8"), _i64("size_e6"), _i64("remaining_size_e6"), _i64("pnl_long_e6"),
    _i64("funding_long_to_short_e6"), _i64("fee_e6"),
    Index("ix_fills_position", "position_id"),
)

funding_payments = Table(
    "funding_payments", metadata,
    _i64("seq", primary_key=True, autoincrement=False),
    _i64("position_id", primary_key=True, autoincrement=False), _i64("ts_ns"),
    Column("source", String(16), nullable=False),  # boundary | close | liquidation
    _i64("boundary_ns", nullable=True),
    Column("payer", KEY, nullable=False), Column("receiver", KEY, nullable=False),
    _i64("amount_e6"),  # > 0, payer -> receiver
    _i64("long_to_short_e6"),  # the same amount, signed long -> short
    **CLUSTERED,
)

closes = Table(
    "closes", metadata,
    _i64("seq", primary_key=True, autoincrement=False), _i64("ts_ns"), _i64("position_id"),
    Column("agent", KEY, nullable=False), Column("reason", String(16), nullable=False),
    Column("fraction_bps", Integer, nullable=False), _i64("price_e8"), _i64("closed_size_e6"),
    _i64("remaining_size_e6"), _i64("funding_long_to_short_e6"), _i64("pnl_long_e6"), _i64("insurance_e6"),
    _i64("bad_debt_e6"),
)

liquidations = Table(
    "liquidations", metadata,
    _i64("seq", primary_key=True, autoincrement=False), _i64("ts_ns"), _i64("position_id"),
    Column("market", SmallInteger, nullable=False), Column("side", String(8), nullable=False),
    Column("liquidated_agent", KEY, nullable=False), Column("counterparty", KEY, nullable=False),
    Column("keeper", KEY, nullable=False), Column("by_engine", Boolean, nullable=False),
    _i64("price_e8"), Column("oracle_stale", Boolean, nullable=False), _i64("size_e6"),
    _i64("funding_long_to_short_e6"), _i64("pnl_long_e6"), _i64("insurance_e6"), _i64("bad_debt_e6"),
    _i64("reward_e6"),
)

# The double-entry books: every Transfer of every event, and FundingSettled's columns
# expanded to one row per position (index = the position's place in the event).
transfers = Table(
    "transfers", metadata,
    _i64("seq", primary_key=True, autoincrement=False),
    Column("idx", Integer, primary_key=True, autoincrement=False), _i64("ts_ns"),
    Column("event", SHORT, nullable=False),
    Column("debit_account", String(16), nullable=False), Column("debit_ref", KEY, nullable=False),
    Column("credit_account", String(16), nullable=False), Column("credit_ref", KEY, nullable=False),
    _i64("amount_e6"), Column("kind", String(16), nullable=False),
    **CLUSTERED,
)

oracle_prices = Table(
    "oracle_prices", metadata,
    _i64("seq", primary_key=True, autoincrement=False), _i64("ts_ns"),
    Column("market", SmallInteger, nullable=False), _i64("price_e8"), _i64("conf_e8"), _i64("publish_ns"),
    Column("source", SHORT, nullable=False),
)

# Per-agent KPIs, maintained incrementally (docs/projections.md, "KPIs", defines each).
agent_kpis = Table(
    "agent_kpis", metadata,
    Column("agent", KEY, primary_key=True),
    _i64("volume_e6"), _i64("fees_paid_e6"), _i64("realized_pnl_e6"),
    _i64("funding_paid_e6"), _i64("funding_received_e6"),
    _i64("liquidation_penalty_e6"), _i64("keeper_rewards_e6"),
    _i64("net_pnl_e6"), _i64("net_pnl_peak_e6"), _i64("max_drawdown_e6"),
    Column("positions_opened", Integer, nullable=False), Column("positions_ended", Integer, nullable=False),
    Column("positions_won", Integer, nullable=False), Column("win_rate_bps", Integer, nullable=True),
    Column("days", Integer, nullable=False), Column("sharpe_daily", Float, nullable=True),
    Column("quotes_submitted", Integer, nullable=False), Column("quotes_filled", Integer, nullable=False),
    Column("quotes_stood", Integer, nullable=False), Column("quotes_pulled", Integer, nullable=False),
    Column("quotes_expired", Integer, nullable=False),
    Column("fill_ratio_bps", Integer, nullable=True), Column("reliability_bps", Integer, nullable=True),
    _i64("updated_seq"),
    **CLUSTERED,
)

agent_daily_pnl = Table(
    "agent_daily_pnl", metadata,
    Column("agent", KEY, primary_key=True),
    Column("day", Integer, primary_key=True, autoincrement=False),  # UTC days since the Unix epoch
    _i64("net_pnl_e6"),
    **CLUSTERED,
)

# The hedger's audit trail (adapters/hedging/audit_sql.py): a projection of its JSONL file, not of
# the journal — one row per line, keyed by the file's id and the line's byte offset, so importing
# a line twice is a no-op and a restart re-imports from the last row on. Secrets are redacted in
# the file already. Quantities in base units × 1e9 (``_e9``, as the hedger's exposure).
CLIENT_ORDER_ID = String(40)  # the hedger's ids are 28..30 characters (adapters/hedging/hedger.py)

hedge_audit = Table(
    "hedge_audit", metadata,
    Column("log_id", String(16), primary_key=True),  # the JSONL file's id, from its first line
    _i64("line_offset", primary_key=True, autoincrement=False), Column("line_bytes", Integer, nullable=False),
    _i64("ts_ns"),  # when the hedger wrote the line (its clock)
    Column("kind", String(16), nullable=False),  # decision | request | response | resolved | reconcile | log_opened
    Column("maker", KEY, nullable=True), Column("market", SmallInteger, nullable=True),
    Column("exchange", SHORT, nullable=True), Column("call", SHORT, nullable=True),
    Column("cid", CLIENT_ORDER_ID, nullable=True), Column("action", SHORT, nullable=True),
    Column("error", String(64), nullable=True),
    Column("record", Text, nullable=False),  # the whole line as written (redacted JSON)
    Index("ix_hedge_audit_ts", "ts_ns"),
    Index("ix_hedge_audit_maker", "maker", "ts_ns"),
    **CLUSTERED,
)

# One row per hedge order, from the audit lines about it: its decision (sent), the exchange's
# answer, or its resolution after an unknown outcome.
hedge_orders = Table(
    "hedge_orders", metadata,
    Column("cid", CLIENT_ORDER_ID, primary_key=True),  # newClientOrderId: (maker, market, seq, attempt)
    Column("maker", KEY, nullable=False), Column("market", SmallInteger, nullable=False),
    Column("exchange", SHORT, nullable=False), Column("symbol", SHORT, nullable=False),
    Column("side", String(8), nullable=False),
    _i64("qty_e9"), _i64("price_e8"),  # asked quantity; the IOC's limit price
    _i64("seq"),  # the journal seq of the exposure change it hedges
    _i64("sent_ts_ns"),  # the order's timestamp (the exchange refuses it after + recvWindow)
    # sent (no answer yet) | the exchange's status (closed, canceled, expired, open, rejected) |
    # refused (an error answer) | unknown (no answer: being resolved) | resolved (found by its id after an unknown outcome) | never_placed
    Column("status", String(16), nullable=False),
    _i64("filled_e9", nullable=True), Column("error", String(64), nullable=True),
    _i64("updated_ts_ns"),
    Index("ix_hedge_orders_maker", "maker", "sent_ts_ns"),
    **CLUSTERED,
)

# Tables a rebuild empties and the checksums compare (the tracking table aside).
MODEL_TABLES = (agents, system_accounts, rfqs, quotes, positions, fills, funding_payments, closes, liquidations,
                transfers, oracle_prices, agent_kpis, agent_daily_pnl)
