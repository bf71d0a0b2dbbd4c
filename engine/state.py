"""The venue's state: struct-of-arrays numpy columns, and dicts only for id -> row.

Only ``engine.apply`` writes it. Rows of RFQs, quotes and positions are recycled through a
free list, so capacities track what is live; capacities grow by doubling (control-plane
steps, never inside a kernel).
"""

from __future__ import annotations

import hashlib

import msgspec
import numpy as np

from engine.markets import EngineConfig

FREE_ROW = 0
LIVE = 1  # an RFQ or quote row in use
OPEN = 1  # a position row in use

CAPACITY_INITIAL = 1024
RECENT_CLOSED_RFQS_MAX = 65_536  # closed RFQ ids remembered for precise rejection codes


class _Views:
    """Attribute bag of memoryviews (see ``Table._make_views``)."""


class Table:
    """Columns of equal length; rows ``< high_water`` have been used at least once."""

    def __init__(self, columns: dict[str, type], capacity: int = CAPACITY_INITIAL):
        self.dtypes = dict(columns)
        self.capacity = capacity
        self.high_water = 0
        self.free_rows: list[int] = []
        self.live = 0
        for name, dtype in self.dtypes.items():
            setattr(self, name, np.zeros(capacity, dtype))
        self._make_views()

    def _make_views(self) -> None:
        """``self.v.<column>``: a memoryview of each column, for scalar access from Python.

        Reading a numpy element costs ~90 ns and returns a numpy scalar; a memoryview
        element ~20 ns and a Python int, on the same memory the kernels see. Refreshed
        whenever the columns are reallocated: fetch ``v`` after ``alloc``.
        """
        views = _Views()
        for name in self.dtypes:
            setattr(views, name, memoryview(getattr(self, name)))
        self.v = views

    def alloc(self) -> int:
        """Take a row: the most recently freed one, else a fresh one (growing if needed)."""
        self.live += 1
        if self.free_rows:
            return self.free_rows.pop()
        if self.high_water == self.capacity:
            self._grow()
        row = self.high_water
        self.high_water += 1
        return row

    def release(self, row: int) -> None:
        """Give a row back. Only its status is cleared: whoever takes the row next sets
        every column, and money columns are already empty (the invariants check that)."""
        self.v.status[row] = FREE_ROW
        self.free_rows.append(row)
        self.live -= 1

    def _grow(self) -> None:
        self.capacity *= 2
        for name, dtype in self.dtypes.items():
            old = getattr(self, name)
            new = np.zeros(self.capacity, dtype)
            new[: len(old)] = old
            setattr(self, name, new)
        self._make_views()

    def column(self, name: str) -> np.ndarray:
        """The used prefix of a column (rows ``< high_water``)."""
        return getattr(self, name)[: self.high_water]


AGENT_COLUMNS = {"free_e6": np.int64, "held_e6": np.int64}

RFQ_COLUMNS = {
    "status": np.int8, "rfq_id": np.int64, "trader": np.int64, "market": np.int64, "is_long": np.int8,
    "size_e6": np.int64, "leverage": np.int64, "max_rate_e9": np.int64, "duration_ns": np.int64,
    "expires_ns": np.int64, "margin_e6": np.int64, "fee_e6": np.int64, "auto_accept": np.int8,
    "has_target": np.int8, "target_rate_e9": np.int64,
}

QUOTE_COLUMNS = {
    "status": np.int8, "quote_id": np.int64, "rfq_id": np.int64, "maker": np.int64, "rate_e9": np.int64,
    "collateral_e6": np.int64, "fee_e6": np.int64, "created_ns": np.int64, "expires_ns": np.int64,
}

POSITION_COLUMNS = {
    "status": np.int8, "position_id": np.int64, "market": np.int16, "taker_is_long": np.int8,
    "long_agent": np.int64, "short_agent": np.int64, "size_e6": np.int64, "size_open_e6": np.int64,
    "entry_price_e8": np.int64, "rate_e9": np.int64, "margin_long_e6": np.int64, "margin_short_e6": np.int64,
    "margin_open_long_e6": np.int64, "margin_open_short_e6": np.int64, "opened_ns": np.int64,
    "last_funding_ns": np.int64, "expires_ns": np.int64, "flagged_ns": np.int64,
}


class Oracle:
    """Last accepted price of each market (index = market id); publish_ns 0 = none yet."""

    def __init__(self, n_markets: int):
        self.price_e8 = [0] * n_markets
        self.conf_e8 = [0] * n_markets
        self.publish_ns = [0] * n_markets
        self.source = [""] * n_markets


class State:
    """Everything the engine knows. Build it empty and apply events to it."""

    def __init__(self, config: EngineConfig):
        config.validate()
        self.config = config
        self.last_seq = 0
        self.last_checkpoint_seq = 0

        self.agents = Table(AGENT_COLUMNS)
        self.agent_row: dict[str, int] = {}
        self.agent_keys: list[str] = []

        self.rfqs = Table(RFQ_COLUMNS)
        self.rfq_row: dict[int, int] = {}
        self.rfq_quotes: dict[int, dict[int, int]] = {}  # rfq_id -> {maker row: quote_id}
        self.closed_rfqs: dict[int, str] = {}  # recent rfq_id -> why it closed (bounded)
        self.next_rfq_id = 1

        self.quotes = Table(QUOTE_COLUMNS)
        self.quote_row: dict[int, int] = {}
        self.next_quote_id = 1

        self.positions = Table(POSITION_COLUMNS)
        self.position_row: dict[int, int] = {}
        self.flagged: dict[int, int] = {}  # position_id -> ns first found liquidatable
        self.fixed_duration_open = 0  # open 1h/24h positions (derived: spares ticks a scan)
        self.next_position_id = 1

        self.oracle = Oracle(len(config.markets))
        self.funding_boundary_ns = 0  # the last 8h boundary whose funding was settled

        # System accounts of the double-entry books, and running totals for the invariants.
        self.fees_e6 = 0
        self.insurance_e6 = 0
        self.external_e6 = 0
        self.bad_debt_e6 = 0
        self.deposited_e6 = 0
        self.withdrawn_e6 = 0

        self.deposit_refs: dict[str, int] = {}  # external ref -> seq of its Deposited
        self.client_ids: dict[tuple[str, str], tuple[int, int]] = {}  # (agent, id) -> (seq, ts_ns)

    # -- reads used by decide -------------------------------------------------------------

    def free_of(self, agent: str) -> int:
        row = self.agent_row.get(agent)
        return 0 if row is None else self.agents.v.free_e6[row]

    def agent_index(self, agent: str) -> int:
        """Row of ``agent``, creating the account on first use (apply only)."""
        row = self.agent_row.get(agent)
        if row is None:
            row = self.agents.alloc()
            self.agent_row[agent] = row
            self.agent_keys.append(agent)
        return row


def state_hash(state: State) -> str:
    """Hex BLAKE2b-256 of the full state in canonical form.

    Tables are hashed row by row in id order over their live rows, agents in key order;
    dicts in key order. Two states built from the same events always hash equal.
    """
    digest = hashlib.blake2b(digest_size=32)
    encode = msgspec.msgpack.encode
    scalars = [
        state.last_seq, state.last_checkpoint_seq, state.next_rfq_id, state.next_quote_id,
        state.next_position_id, state.funding_boundary_ns, state.fees_e6, state.insurance_e6,
        state.external_e6, state.bad_debt_e6, state.deposited_e6, state.withdrawn_e6,
        state.oracle.price_e8, state.oracle.conf_e8, state.oracle.publish_ns, state.oracle.source,
    ]
    digest.update(encode(scalars))
    agents = state.agents
    for key in sorted(state.agent_row):
        row = state.agent_row[key]
        digest.update(encode([key, row, int(agents.free_e6[row]), int(agents.held_e6[row])]))
    for table, id_column in ((state.rfqs, "rfq_id"), (state.quotes, "quote_id"), (state.positions, "position_id")):
        _hash_table(digest, table, id_column)
    digest.update(encode(sorted(state.flagged.items())))
    digest.update(encode(sorted(state.closed_rfqs.items())))
    digest.update(encode(sorted(state.deposit_refs.items())))
    digest.update(encode(sorted([list(k), list(v)] for k, v in state.client_ids.items())))
    return digest.hexdigest()


def _hash_table(digest, table: Table, id_column: str) -> None:
    status = table.column("status")
    rows = np.flatnonzero(status != FREE_ROW)
    rows = rows[np.argsort(table.column(id_column)[rows], kind="stable")]
    for name in table.dtypes:
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(getattr(table, name)[rows]).tobytes())


# -- snapshots: the state as plain data and back (the files are ledger/'s business) ----------

SNAPSHOT_FORMAT = 1


def _table_export(table: Table) -> dict:
    n = table.high_water
    return {"capacity": table.capacity, "high_water": n, "free_rows": list(table.free_rows), "live": table.live,
            "columns": {name: getattr(table, name)[:n].tobytes() for name in table.dtypes}}


def _table_import(table: Table, data: dict) -> None:
    table.capacity = data["capacity"]
    table.high_water = data["high_water"]
    table.free_rows = list(data["free_rows"])
    table.live = data["live"]
    for name, dtype in table.dtypes.items():
        column = np.zeros(table.capacity, dtype)
        used = np.frombuffer(data["columns"][name], dtype)
        column[: len(used)] = used
        setattr(table, name, column)
    table._make_views()


def export_state(state: State) -> dict:
    """A deep, self-contained copy of the state as plain data (bytes for columns).

    Cheap enough to take between two commands; encoding and writing it can then happen on
    another thread while the engine goes on.
    """
    o = state.oracle
    return {
        "format": SNAPSHOT_FORMAT,
        "scalars": {name: getattr(state, name) for name in _SCALARS},
        "oracle": [list(o.price_e8), list(o.conf_e8), list(o.publish_ns), list(o.source)],
        "agent_keys": list(state.agent_keys),
        "agents": _table_export(state.agents),
        "rfqs": _table_export(state.rfqs),
        "quotes": _table_export(state.quotes),
        "positions": _table_export(state.positions),
        "closed_rfqs": list(state.closed_rfqs.items()),
        "flagged": list(state.flagged.items()),
        "deposit_refs": list(state.deposit_refs.items()),
        "client_ids": [[agent, client_id, seq, ts_ns] for (agent, client_id), (seq, ts_ns) in state.client_ids.items()],
    }


def import_state(config: EngineConfig, data: dict) -> State:
    """Rebuild a ``State`` from ``export_state`` output (dict order is preserved)."""
    if data.get("format") != SNAPSHOT_FORMAT:
        raise ValueError(f"snapshot format {data.get('format')} is not {SNAPSHOT_FORMAT}")
    state = State(config)
    for name, value in data["scalars"].items():
        setattr(state, name, value)
    o = state.oracle
    o.price_e8, o.conf_e8, o.publish_ns, o.source = (list(column) for column in data["oracle"])
    state.agent_keys = list(data["agent_keys"])
    state.agent_row = {key: row for row, key in enumerate(state.agent_keys)}
    for name in ("agents", "rfqs", "quotes", "positions"):
        _table_import(getattr(state, name), data[name])
    r, q, p = state.rfqs, state.quotes, state.positions
    state.rfq_row = {int(r.rfq_id[row]): row for row in np.flatnonzero(r.column("status") != FREE_ROW).tolist()}
    state.quote_row = {int(q.quote_id[row]): row for row in np.flatnonzero(q.column("status") != FREE_ROW).tolist()}
    state.position_row = {int(p.position_id[row]): row
                          for row in np.flatnonzero(p.column("status") != FREE_ROW).tolist()}
    state.rfq_quotes = {rfq_id: {} for rfq_id in state.rfq_row}
    for quote_id, row in sorted(state.quote_row.items()):
        state.rfq_quotes[int(q.rfq_id[row])][int(q.maker[row])] = quote_id
    state.fixed_duration_open = int(np.count_nonzero(p.column("expires_ns")[p.column("status") == OPEN]))
    state.closed_rfqs = {int(k): v for k, v in data["closed_rfqs"]}
    state.flagged = {int(k): int(v) for k, v in data["flagged"]}
    state.deposit_refs = {k: int(v) for k, v in data["deposit_refs"]}
    state.client_ids = {(agent, client_id): (seq, ts_ns) for agent, client_id, seq, ts_ns in data["client_ids"]}
    return state


_SCALARS = ("last_seq", "last_checkpoint_seq", "next_rfq_id", "next_quote_id", "next_position_id",
            "funding_boundary_ns", "fees_e6", "insurance_e6", "external_e6", "bad_debt_e6", "deposited_e6",
            "withdrawn_e6")
