"""The venue's state. Only ``engine.apply`` writes it.

Accounts and positions are struct-of-arrays numpy columns (positions are what the kernels
sweep), with dicts for key/id -> row. Rows are recycled through a free list, so capacities
track what is live; capacities grow by doubling (control-plane steps, never inside a kernel).

Open RFQs and live quotes are small records in id-keyed dicts: no kernel sweeps them, they
live seconds, and every command touches one or a few of them, where a Python attribute is
far cheaper than a numpy row (docs/engine.md, "State representation").
"""

from __future__ import annotations

import hashlib
from collections import deque
import math

import msgspec
import numpy as np

from engine.kernels.msgpack_nb import PAIR_BYTES_MAX_BEFORE_STR, id_str_pairs_nb
from engine.lifecycles import GONE, NEW, PositionStatus, QuoteState, RfqState
from engine.markets import EngineConfig

FREE_ROW = int(PositionStatus.FREE)  # plain ints: the kernels compare the status column with them
OPEN = int(PositionStatus.OPEN)  # a position row in use
LIVE = 1  # an RFQ or quote in the canonical column form (state_hash, snapshots)

CAPACITY_INITIAL = 1024
OPENED_NS_NONE = 2**63 - 1  # State.opened_ns_low before any position opened
RECENT_CLOSED_RFQS_MAX = 65_536  # closed RFQ ids remembered for precise rejection codes


class _Views:
    """Attribute bag of memoryviews (see ``Table._make_views``)."""


class Table:
    """Columns of equal length; rows ``< high_water`` have been used at least once."""

    def __init__(self, columns: dict[str, type], capacity: int = CAPACITY_INITIAL,
                 derived: dict[str, type] | None = None):
        self.dtypes = dict(columns)
        # Columns computed from the others (kept by the rules that change those): grown and
        # viewed like them, but neither hashed nor exported; recomputed on import.
        self.derived = dict(derived or {})
        self.capacity = capacity
        self.high_water = 0
        self.free_rows: list[int] = []
        self.live = 0
        for name, dtype in self._all_dtypes():
            setattr(self, name, np.zeros(capacity, dtype))
        self._make_views()

    def _all_dtypes(self) -> list:
        return list(self.dtypes.items()) + list(self.derived.items())

    def _make_views(self) -> None:
        """``self.v.<column>``: a memoryview of each column, for scalar access from Python.

        Reading a numpy element costs ~90 ns and returns a numpy scalar; a memoryview
        element ~20 ns and a Python int, on the same memory the kernels see. Refreshed
        whenever the columns are reallocated: fetch ``v`` after ``alloc``.
        """
        views = _Views()
        for name, _dtype in self._all_dtypes():
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
        for name, dtype in self._all_dtypes():
            old = getattr(self, name)
            new = np.zeros(self.capacity, dtype)
            new[: len(old)] = old
            setattr(self, name, new)
        self._make_views()

    def column(self, name: str) -> np.ndarray:
        """The used prefix of a column (rows ``< high_water``)."""
        return getattr(self, name)[: self.high_water]


AGENT_COLUMNS = {"free_e6": np.int64, "held_e6": np.int64}

# The canonical column form of RFQs and quotes, for state_hash and snapshots: it is the layout
# they had as numpy tables, kept so that hashes and snapshot files stay what they were.
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
# Derived, per open position: its safe band (``formulas.safe_band_e8`` of its columns), kept
# by ``engine.risk.bands`` whenever its size or margins change. A sweep skips the exact test
# of a row whose band holds the price, and a market's band is the intersection of these.
POSITION_DERIVED_COLUMNS = {"band_low_e8": np.float64, "band_high_e8": np.float64}


# Quote and Rfq are plain classes with slots, not msgspec structs (they are never encoded:
# state_hash and snapshots use their column form): the compiled engine makes them extension
# types (state.pxd), whose attributes the rules read as slots.


class Quote:
    """A live, firm quote; ``collateral_e6 + fee_e6`` is the maker's hold."""

    __slots__ = ("quote_id", "rfq_id", "maker", "rate_e9", "collateral_e6", "fee_e6", "created_ns", "expires_ns")

    def __init__(self, quote_id: int, rfq_id: int, maker: str, rate_e9: int, collateral_e6: int, fee_e6: int,
                 created_ns: int, expires_ns: int):
        self.quote_id = quote_id
        self.rfq_id = rfq_id
        self.maker = maker
        self.rate_e9 = rate_e9
        self.collateral_e6 = collateral_e6
        self.fee_e6 = fee_e6
        self.created_ns = created_ns
        self.expires_ns = expires_ns

    def __repr__(self) -> str:
        return f"Quote({self.quote_id}, rfq {self.rfq_id}, {self.maker!r}, rate_e9 {self.rate_e9})"


class Rfq:
    """An open RFQ; ``quotes`` maps each maker to its live quote on it (at most one each)."""

    __slots__ = ("rfq_id", "trader", "market", "is_long", "size_e6", "leverage", "max_rate_e9", "duration_ns",
                 "expires_ns", "margin_e6", "fee_e6", "auto_accept", "target_rate_e9", "quotes")

    def __init__(self, rfq_id: int, trader: str, market: int, is_long: bool, size_e6: int, leverage: int,
                 max_rate_e9: int, duration_ns: int, expires_ns: int, margin_e6: int, fee_e6: int,
                 auto_accept: bool, target_rate_e9: int | None, quotes: dict[str, Quote]):
        self.rfq_id = rfq_id
        self.trader = trader
        self.market = market
        self.is_long = is_long
        self.size_e6 = size_e6
        self.leverage = leverage
        self.max_rate_e9 = max_rate_e9
        self.duration_ns = duration_ns  # 0: perpetual
        self.expires_ns = expires_ns
        self.margin_e6 = margin_e6  # what the trader's side will post at open
        self.fee_e6 = fee_e6  # taker fee; margin + fee is the trader's hold
        self.auto_accept = auto_accept
        self.target_rate_e9 = target_rate_e9
        self.quotes = quotes

    def __repr__(self) -> str:
        return f"Rfq({self.rfq_id}, {self.trader!r}, market {self.market}, {len(self.quotes)} quotes)"


class Oracle:
    """Last accepted price of each market (index = market id); publish_ns 0 = none yet."""

    def __init__(self, n_markets: int):
        self.price_e8 = [0] * n_markets
        self.conf_e8 = [0] * n_markets
        self.publish_ns = [0] * n_markets
        self.source = [""] * n_markets
        # The short TWAP each last price is judged against (engine/oracle.py); 0 = no price yet.
        self.twap_e8 = [0] * n_markets


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

        # Ids are handed out in increasing order, so both dicts iterate in id order.
        self.rfqs: dict[int, Rfq] = {}  # open RFQs
        # Recent rfq_id -> its end state (``RfqState`` value), oldest first (bounded). The oldest
        # is dropped by its key, read from the ring below (finding a plain dict's first key
        # would rescan its deleted slots: quadratic over a run).
        self.closed_rfqs: dict[int, str] = {}
        # Derived: the same ids and end states as a ring of columns (slot of the k-th kept:
        # k % RECENT_CLOSED_RFQS_MAX), so that state_hash reads them as arrays: walking the
        # full dict's 65 536 items took 20 - 30 ms of each checkpoint's hash (closed_rfqs_msgpack).
        self.closed_rfq_ids = np.zeros(RECENT_CLOSED_RFQS_MAX, np.int64)
        self.closed_rfq_ends = np.zeros(RECENT_CLOSED_RFQS_MAX, np.int8)  # the dict's values as CLOSED_RFQ_ENDS codes
        self.closed_rfq_next = 0  # the ring's slot for the next closed RFQ
        self.next_rfq_id = 1

        self.quotes: dict[int, Quote] = {}  # live quotes (each also in its RFQ's ``quotes``)
        self.next_quote_id = 1

        self.positions = Table(POSITION_COLUMNS, derived=POSITION_DERIVED_COLUMNS)
        self.position_row: dict[int, int] = {}
        self.flagged: dict[int, int] = {}  # position_id -> ns first found liquidatable
        self.fixed_duration_open = 0  # open 1h/24h positions (derived: spares ticks a scan)
        # Derived: no open position opened before this (closing one never raises it); lets a
        # Tick see without a scan that the funding clock has not started (risk/funding.py).
        self.opened_ns_low = OPENED_NS_NONE
        self.next_position_id = 1

        self.oracle = Oracle(len(config.markets))
        self.funding_boundary_ns = 0  # the last 8h boundary whose funding was settled
        # Derived, per market: prices strictly between these leave every open position of
        # the market safe, so an oracle update there needs no sweep (engine/oracle.py).
        # Conservative: only ever narrowed, and recomputed exactly when a price leaves it.
        self.safe_low_e8 = [-math.inf] * len(config.markets)
        self.safe_high_e8 = [math.inf] * len(config.markets)

        # System accounts of the double-entry books, and running totals for the invariants.
        self.fees_e6 = 0
        self.insurance_e6 = 0
        self.external_e6 = 0
        self.bad_debt_e6 = 0
        self.deposited_e6 = 0
        self.withdrawn_e6 = 0

        self.deposit_refs: dict[str, int] = {}  # external ref -> seq of its Deposited (for ever; bounded)
        self.client_ids: dict[tuple[str, str], tuple[int, int]] = {}  # (agent, id) -> (seq, ts_ns)
        # Derived: the same entries as ``client_ids``, in the same (time) order, as
        # (ts_ns, seq, key): the window is trimmed from its left in O(1) (apply), where
        # deleting from the front of a dict would rescan its deleted slots.
        self.client_id_order: deque[tuple[int, int, tuple[str, str]]] = deque()
        # Derived, per agent: its open RFQs and live quotes (the per-agent limits).
        self.open_rfqs_of: dict[str, int] = {}
        self.live_quotes_of: dict[str, int] = {}

    # -- reads used by decide -------------------------------------------------------------

    def rfq_state(self, rfq_id: int) -> str:
        """Where the RFQ is in its lifecycle (``engine.lifecycles.RFQ``): an ``RfqState``
        value, ``NEW`` for an id not handed out, ``GONE`` for one closed and forgotten."""
        if rfq_id in self.rfqs:
            return _RFQ_OPEN
        ended = self.closed_rfqs.get(rfq_id)
        if ended is not None:
            return ended
        return GONE if 1 <= rfq_id < self.next_rfq_id else NEW

    def remember_closed_rfq(self, rfq_id: int, ended: str) -> None:
        """Keep the end state of an RFQ just closed; the oldest kept is forgotten beyond
        ``RECENT_CLOSED_RFQS_MAX``."""
        closed = self.closed_rfqs
        slot = self.closed_rfq_next
        if len(closed) == RECENT_CLOSED_RFQS_MAX:
            del closed[int(self.closed_rfq_ids[slot])]  # the oldest kept: its slot is reused below
        closed[rfq_id] = ended
        self.closed_rfq_ids[slot] = rfq_id
        self.closed_rfq_ends[slot] = _CLOSED_RFQ_END_CODE[ended]
        self.closed_rfq_next = (slot + 1) % RECENT_CLOSED_RFQS_MAX

    def quote_state(self, quote_id: int) -> str:
        """``QuoteState.LIVE``'s value, ``NEW`` for an id not handed out, else ``GONE``
        (ended quotes are not remembered)."""
        if quote_id in self.quotes:
            return _QUOTE_LIVE
        return GONE if 1 <= quote_id < self.next_quote_id else NEW

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


_RFQ_OPEN = RfqState.OPEN.value
# The end states a closed RFQ is kept with, as the ring's int8 codes (their index here).
CLOSED_RFQ_ENDS = tuple(end.value for end in RfqState if end is not RfqState.OPEN)
_CLOSED_RFQ_END_CODE = {end: code for code, end in enumerate(CLOSED_RFQ_ENDS)}
# Their msgpack, one after the other, and where each starts (closed_rfqs_msgpack's kernel).
_CLOSED_RFQ_END_ENCODED = [msgspec.msgpack.encode(end) for end in CLOSED_RFQ_ENDS]
_CLOSED_RFQ_END_MSGPACK = np.frombuffer(b"".join(_CLOSED_RFQ_END_ENCODED), np.uint8)
_CLOSED_RFQ_END_STARTS = np.cumsum([0] + [len(encoded) for encoded in _CLOSED_RFQ_END_ENCODED])
_CLOSED_RFQ_END_BYTES_MAX = max(map(len, _CLOSED_RFQ_END_ENCODED))
_QUOTE_LIVE = QuoteState.LIVE.value


def state_hash(state: State) -> str:
    """Hex BLAKE2b-256 of the full state in canonical form.

    Tables are hashed column by column over their live rows in id order (RFQs and quotes in
    their canonical column form), agents in key order; dicts in key order. Two states built
    from the same events always hash equal. Derived data (indexes, counts, safe bands) is
    left out: it follows from the rest.
    """
    digest = hashlib.blake2b(digest_size=32)
    encode = msgspec.msgpack.encode
    scalars = [
        state.last_seq, state.last_checkpoint_seq, state.next_rfq_id, state.next_quote_id,
        state.next_position_id, state.funding_boundary_ns, state.fees_e6, state.insurance_e6,
        state.external_e6, state.bad_debt_e6, state.deposited_e6, state.withdrawn_e6,
        state.oracle.price_e8, state.oracle.conf_e8, state.oracle.publish_ns, state.oracle.source,
        state.oracle.twap_e8,
    ]
    digest.update(encode(scalars))
    agents = state.agents
    for key in sorted(state.agent_row):
        row = state.agent_row[key]
        digest.update(encode([key, row, int(agents.free_e6[row]), int(agents.held_e6[row])]))
    for columns in (rfq_columns(state), quote_columns(state), _live_columns(state.positions, "position_id")):
        for name, column in columns.items():
            digest.update(name.encode())
            digest.update(column.tobytes())
    digest.update(encode(sorted(state.flagged.items())))
    digest.update(closed_rfqs_msgpack(state))
    digest.update(encode(sorted(state.deposit_refs.items())))
    digest.update(encode(sorted([list(k), list(v)] for k, v in state.client_ids.items())))
    return digest.hexdigest()


def closed_rfqs_msgpack(state: State) -> bytes:
    """``msgspec.msgpack.encode(sorted(state.closed_rfqs.items()))`` — the bytes state_hash
    has always hashed — written by a kernel from the ring of closed RFQs, without a Python
    object per RFQ (held equal by tests/unit/test_closed_rfqs_hash.py): the 65 536 pairs
    took ~6 ms of every checkpoint's hash as lists encoded by msgspec."""
    kept = len(state.closed_rfqs)  # below the bound the ring has never wrapped: slots [0, kept)
    ids = np.asarray(state.closed_rfq_ids)[:kept]  # asarray: the compiled engine's are typed memoryviews
    order = np.argsort(ids, kind="stable")
    if kept and ids[order[0]] < 0:
        raise AssertionError(f"a closed RFQ id is negative: {ids[order[0]]}")
    out = np.empty(kept * (PAIR_BYTES_MAX_BEFORE_STR + _CLOSED_RFQ_END_BYTES_MAX), np.uint8)
    written = id_str_pairs_nb(ids[order], np.asarray(state.closed_rfq_ends)[order], _CLOSED_RFQ_END_MSGPACK,
                              _CLOSED_RFQ_END_STARTS, out)
    return _msgpack_array_header(kept) + out[:written].tobytes()


def _msgpack_array_header(length: int) -> bytes:
    """msgpack's header of an array of ``length`` items, as msgspec writes it."""
    if length < 16:
        return bytes([0x90 | length])
    if length < 1 << 16:
        return b"\xdc" + length.to_bytes(2, "big")
    return b"\xdd" + length.to_bytes(4, "big")


def _live_columns(table: Table, id_column: str) -> dict[str, np.ndarray]:
    rows = np.flatnonzero(table.column("status") != FREE_ROW)
    rows = rows[np.argsort(table.column(id_column)[rows], kind="stable")]
    return {name: np.ascontiguousarray(getattr(table, name)[rows]) for name in table.dtypes}


def rfq_columns(state: State) -> dict[str, np.ndarray]:
    """The open RFQs in canonical column form (``RFQ_COLUMNS``), in id order."""
    rfqs = sorted(state.rfqs.values(), key=lambda r: r.rfq_id)
    agent_row = state.agent_row
    values = {
        "status": [LIVE] * len(rfqs), "rfq_id": [r.rfq_id for r in rfqs],
        "trader": [agent_row[r.trader] for r in rfqs], "market": [r.market for r in rfqs],
        "is_long": [r.is_long for r in rfqs], "size_e6": [r.size_e6 for r in rfqs],
        "leverage": [r.leverage for r in rfqs], "max_rate_e9": [r.max_rate_e9 for r in rfqs],
        "duration_ns": [r.duration_ns for r in rfqs], "expires_ns": [r.expires_ns for r in rfqs],
        "margin_e6": [r.margin_e6 for r in rfqs], "fee_e6": [r.fee_e6 for r in rfqs],
        "auto_accept": [r.auto_accept for r in rfqs], "has_target": [r.target_rate_e9 is not None for r in rfqs],
        "target_rate_e9": [r.target_rate_e9 or 0 for r in rfqs],
    }
    return {name: np.array(values[name], dtype) for name, dtype in RFQ_COLUMNS.items()}


def quote_columns(state: State) -> dict[str, np.ndarray]:
    """The live quotes in canonical column form (``QUOTE_COLUMNS``), in id order."""
    quotes = sorted(state.quotes.values(), key=lambda q: q.quote_id)
    agent_row = state.agent_row
    values = {
        "status": [LIVE] * len(quotes), "quote_id": [q.quote_id for q in quotes],
        "rfq_id": [q.rfq_id for q in quotes], "maker": [agent_row[q.maker] for q in quotes],
        "rate_e9": [q.rate_e9 for q in quotes], "collateral_e6": [q.collateral_e6 for q in quotes],
        "fee_e6": [q.fee_e6 for q in quotes], "created_ns": [q.created_ns for q in quotes],
        "expires_ns": [q.expires_ns for q in quotes],
    }
    return {name: np.array(values[name], dtype) for name, dtype in QUOTE_COLUMNS.items()}


# -- snapshots: the state as plain data and back (the files are ledger/'s business) ----------

# 2: the oracle's TWAP joined the state (format 1 has none; recovery skips such a snapshot and
# replays the journal, which rebuilds it).
SNAPSHOT_FORMAT = 2


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
    for name, dtype in table.derived.items():  # recomputed by the caller
        setattr(table, name, np.zeros(table.capacity, dtype))
    table._make_views()


def _records_export(columns: dict[str, np.ndarray]) -> dict:
    """Records in the table form of snapshot format 1 (rows packed, none free)."""
    n = len(columns["status"])
    return {"capacity": n, "high_water": n, "free_rows": [], "live": n,
            "columns": {name: column.tobytes() for name, column in columns.items()}}


def _records_import(data: dict, dtypes: dict[str, type], id_column: str) -> list[dict]:
    """The live rows of a table-form export, as dicts in id order."""
    columns = {name: np.frombuffer(data["columns"][name], dtype) for name, dtype in dtypes.items()}
    rows = np.flatnonzero(columns["status"] != FREE_ROW)
    rows = rows[np.argsort(columns[id_column][rows], kind="stable")]
    return [{name: column[row].item() for name, column in columns.items()} for row in rows.tolist()]


def export_state(state: State) -> dict:
    """A deep, self-contained copy of the state as plain data (bytes for columns).

    Cheap enough to take between two commands; encoding and writing it can then happen on
    another thread while the engine goes on.
    """
    o = state.oracle
    return {
        "format": SNAPSHOT_FORMAT,
        "scalars": {name: getattr(state, name) for name in _SCALARS},
        "oracle": [list(o.price_e8), list(o.conf_e8), list(o.publish_ns), list(o.source), list(o.twap_e8)],
        "agent_keys": list(state.agent_keys),
        "agents": _table_export(state.agents),
        "rfqs": _records_export(rfq_columns(state)),
        "quotes": _records_export(quote_columns(state)),
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
    o.price_e8, o.conf_e8, o.publish_ns, o.source, o.twap_e8 = (list(column) for column in data["oracle"])
    state.agent_keys = keys = list(data["agent_keys"])
    state.agent_row = {key: row for row, key in enumerate(keys)}
    for name in ("agents", "positions"):
        _table_import(getattr(state, name), data[name])
    for r in _records_import(data["rfqs"], RFQ_COLUMNS, "rfq_id"):
        state.rfqs[r["rfq_id"]] = Rfq(
            r["rfq_id"], keys[r["trader"]], r["market"], bool(r["is_long"]), r["size_e6"], r["leverage"],
            r["max_rate_e9"], r["duration_ns"], r["expires_ns"], r["margin_e6"], r["fee_e6"], bool(r["auto_accept"]),
            r["target_rate_e9"] if r["has_target"] else None, {})
    for q in _records_import(data["quotes"], QUOTE_COLUMNS, "quote_id"):
        quote = Quote(q["quote_id"], q["rfq_id"], keys[q["maker"]], q["rate_e9"], q["collateral_e6"], q["fee_e6"],
                      q["created_ns"], q["expires_ns"])
        state.quotes[quote.quote_id] = quote
        state.rfqs[quote.rfq_id].quotes[quote.maker] = quote
    p = state.positions
    state.position_row = {int(p.position_id[row]): row
                          for row in np.flatnonzero(p.column("status") != FREE_ROW).tolist()}
    open_rows = p.column("status") == OPEN
    state.fixed_duration_open = int(np.count_nonzero(p.column("expires_ns")[open_rows]))
    state.opened_ns_low = int(p.column("opened_ns")[open_rows].min()) if p.live else OPENED_NS_NONE
    for rfq_id, ended in data["closed_rfqs"]:  # oldest first, as they were kept
        state.remember_closed_rfq(int(rfq_id), ended)
    state.flagged = {int(k): int(v) for k, v in data["flagged"]}
    state.deposit_refs = {k: int(v) for k, v in data["deposit_refs"]}
    state.client_ids = {(agent, client_id): (seq, ts_ns) for agent, client_id, seq, ts_ns in data["client_ids"]}
    state.client_id_order = deque((ts_ns, seq, key) for key, (seq, ts_ns) in state.client_ids.items())
    for rfq in state.rfqs.values():
        state.open_rfqs_of[rfq.trader] = state.open_rfqs_of.get(rfq.trader, 0) + 1
    for quote in state.quotes.values():
        state.live_quotes_of[quote.maker] = state.live_quotes_of.get(quote.maker, 0) + 1
    from engine.risk import bands  # here: bands reads the State this module defines

    bands.refresh(state)  # the derived bands: every position's, then every market's
    return state


_SCALARS = ("last_seq", "last_checkpoint_seq", "next_rfq_id", "next_quote_id", "next_position_id",
            "funding_boundary_ns", "fees_e6", "insurance_e6", "external_e6", "bad_debt_e6", "deposited_e6",
            "withdrawn_e6")
