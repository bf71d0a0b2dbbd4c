"""Reads of the SQL read models: what the HTTP history endpoints and the CLI ask.

Every function takes an SQLAlchemy ``Connection`` and returns plain dicts in engine units
(the HTTP edge renders human units). Lists are bounded: ``PAGE_SIZE_MAX`` rows a page,
keyset-paginated by id (stable under concurrent inserts, no OFFSET scans).
"""

from __future__ import annotations

import hashlib

from sqlalchemy import Connection, desc, func, or_, select

from ledger.projections.sql import schema as t

PAGE_SIZE_DEFAULT = 100
PAGE_SIZE_MAX = 1_000
LEADERBOARD_SIZE_DEFAULT = 20
LEADERBOARD_SIZE_MAX = 500

# by -> (column, rows it ranks): the column is the ranking, highest first.
LEADERBOARD_BY = {
    "pnl": t.agent_kpis.c.net_pnl_e6,
    "sharpe": t.agent_kpis.c.sharpe_daily,
    "volume": t.agent_kpis.c.volume_e6,
    "reliability": t.agent_kpis.c.reliability_bps,
}
# A closed-status filter of /history/positions -> the statuses it means.
POSITION_STATUS = {
    "open": ("open",),
    "closed": ("closed", "expired", "liquidated"),  # every ended position; the row's status says how
    "liquidated": ("liquidated",),
    "expired": ("expired",),
}


def checkpoint(conn: Connection, name: str) -> tuple[int, int] | None:
    """(seq, ts_ns) of projection ``name``'s checkpoint, or None if it never ran."""
    row = conn.execute(select(t.projection_checkpoints.c.seq, t.projection_checkpoints.c.ts_ns)
                       .where(t.projection_checkpoints.c.name == name)).first()
    return None if row is None else (row.seq, row.ts_ns)


def agent_stats(conn: Connection, agent: str) -> dict | None:
    """An agent's KPIs and balances (None for an agent the read model never saw)."""
    kpis = conn.execute(select(t.agent_kpis).where(t.agent_kpis.c.agent == agent)).mappings().first()
    if kpis is None:
        return None
    balances = conn.execute(select(t.agents).where(t.agents.c.agent == agent)).mappings().first()
    open_positions = conn.execute(
        select(func.count()).select_from(t.positions)
        .where(t.positions.c.status == "open", or_(t.positions.c.long_agent == agent,
                                                   t.positions.c.short_agent == agent))).scalar()
    return {**dict(kpis), **{k: v for k, v in dict(balances).items() if k != "agent"},
            "open_positions": open_positions}


def leaderboard(conn: Connection, by: str, limit: int = LEADERBOARD_SIZE_DEFAULT) -> list[dict]:
    """The top ``limit`` agents by ``by`` (see ``LEADERBOARD_BY``); agents without the
    figure (no Sharpe yet, no resolved quote) are left out. Ties: the agent key."""
    assert 1 <= limit <= LEADERBOARD_SIZE_MAX, limit
    column = LEADERBOARD_BY[by]
    rows = conn.execute(select(t.agent_kpis).where(column.is_not(None))
                        .order_by(desc(column), t.agent_kpis.c.agent).limit(limit)).mappings()
    return [dict(row) for row in rows]


def positions_history(conn: Connection, *, agent: str | None, status: str | None, before_id: int | None,
                      limit: int = PAGE_SIZE_DEFAULT) -> tuple[list[dict], int | None]:
    """Positions newest first (by id), filtered; the page and the ``before_id`` of the next
    page (None when this is the last)."""
    assert 1 <= limit <= PAGE_SIZE_MAX, limit
    p = t.positions
    query = select(p)
    if agent is not None:
        query = query.where(or_(p.c.long_agent == agent, p.c.short_agent == agent))
    if status is not None:
        query = query.where(p.c.status.in_(POSITION_STATUS[status]))
    if before_id is not None:
        query = query.where(p.c.position_id < before_id)
    rows = [dict(row) for row in conn.execute(query.order_by(desc(p.c.position_id)).limit(limit + 1)).mappings()]
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1]["position_id"] if more else None)


def table_counts(conn: Connection) -> dict[str, int]:
    return {table.name: conn.execute(select(func.count()).select_from(table)).scalar()
            for table in t.MODEL_TABLES}


def table_checksums(conn: Connection) -> dict[str, str]:
    """A SHA-256 of every model table's rows in primary-key order (values rendered the same
    way on SQLite and PostgreSQL): equal checksums, equal tables."""
    out = {}
    for table in t.MODEL_TABLES:
        digest = hashlib.sha256()
        order = list(table.primary_key.columns)
        for row in conn.execute(select(table).order_by(*order)):
            digest.update(repr(tuple(_canonical(v) for v in row)).encode())
        out[table.name] = digest.hexdigest()
    return out


def _canonical(value):
    if isinstance(value, float):
        return float.hex(value)
    if isinstance(value, bool):
        return int(value)
    return value
