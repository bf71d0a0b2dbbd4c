"""The lifecycles of an RFQ, a quote and a position as explicit transition tables.

Each table maps ``(state, what happened) -> next state``. ``apply`` routes every lifecycle
change through ``next_state``; a pair missing from its table is a bug (an event that
cannot happen in that state), so it raises ``TransitionError`` and the process fails fast
(STYLE: "Lifecycles are explicit transition tables; an unknown transition raises").

What happened is named by the event's own words: the reasons of ``RfqClosed`` and
``QuoteReleased`` (``events.py``), ``filled`` / ``accepted`` for a ``PositionOpened``.

The states' values are what the state already stores, so ``state_hash`` and snapshots are
unchanged: an RFQ's end state is the string kept in ``State.closed_rfqs``; a position's
status is the integer of the ``status`` column (``FREE`` 0: no position in the row, ``OPEN``
1; a closed or liquidated position frees its row). Open RFQs and live quotes are the
records in ``State.rfqs`` / ``State.quotes`` (their canonical column form writes status 1,
``state.LIVE``).
"""

from __future__ import annotations

from enum import Enum, IntEnum


class TransitionError(AssertionError):
    """A lifecycle change its table does not allow: a bug, never a rejection."""


class RfqState(str, Enum):
    OPEN = "open"
    FILLED = "filled"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class QuoteState(str, Enum):
    LIVE = "live"
    ACCEPTED = "accepted"
    RELEASED = "released"


class PositionStatus(IntEnum):
    """The ``status`` column of the positions table (values are hashed: never renumber)."""

    FREE = 0  # no position in this row
    OPEN = 1
    CLOSED = 2  # terminal, never stored: the row is freed
    LIQUIDATED = 3  # terminal, never stored: the row is freed


NEW = "new"  # before the first event (an id not handed out yet)
GONE = "gone"  # ended and no longer remembered (an old RFQ id, any ended quote's id)


class Lifecycle:
    """A transition table over the stored values of a state enum (plain str / int keys:
    hashing an Enum member costs four times as much, and ``apply`` is the hot path).

    ``table`` is nested, ``{state: {happened: next state}}``: two lookups of keys whose
    hashes are cached (interned strs, small ints), where a ``(state, happened)`` key would
    be a tuple built and hashed at every transition (~5% of the compiled engine's time)."""

    __slots__ = ("name", "table")

    def __init__(self, name: str, transitions: dict):
        self.name = name
        self.table: dict = {}
        for (state, happened), following in transitions.items():
            self.table.setdefault(_value(state), {})[happened] = _value(following)

    def next(self, state, happened: str, subject_id: int):
        """The state after ``happened`` in ``state``; raise ``TransitionError`` if the table
        has no such transition."""
        transitions = self.table.get(state, _NONE)
        following = transitions.get(happened)
        if following is None:
            raise TransitionError(f"{self.name} {subject_id}: no transition from {state!r} on {happened!r} "
                                  f"(allowed from there: {sorted(transitions)})")
        return following


_NONE: dict = {}  # the transitions from a state not in a table: none


def _value(state):
    return state.value if isinstance(state, Enum) else state


# Only changes of state are listed: an event that leaves its subject where it is (a quote
# on an open RFQ, funding or a margin change on an open position) needs the subject live,
# which apply's own lookups enforce.
RFQ = Lifecycle("RFQ", {
    (NEW, "opened"): RfqState.OPEN,
    (RfqState.OPEN, "filled"): RfqState.FILLED,  # PositionOpened
    (RfqState.OPEN, "cancelled"): RfqState.CANCELLED,  # the reasons of RfqClosed
    (RfqState.OPEN, "expired"): RfqState.EXPIRED,
})

QUOTE = Lifecycle("quote", {
    (NEW, "submitted"): QuoteState.LIVE,
    (QuoteState.LIVE, "accepted"): QuoteState.ACCEPTED,  # the quote a PositionOpened took
    # The reasons of QuoteReleased, and "not_selected" for the others a fill releases.
    **{(QuoteState.LIVE, reason): QuoteState.RELEASED
       for reason in ("cancelled", "replaced", "expired", "rfq_closed", "not_selected", "session_ended")},
})

POSITION = Lifecycle("position", {
    (PositionStatus.FREE, "opened"): PositionStatus.OPEN,
    (PositionStatus.OPEN, "closed_partly"): PositionStatus.OPEN,
    (PositionStatus.OPEN, "closed"): PositionStatus.CLOSED,  # the row is then freed
    (PositionStatus.OPEN, "liquidated"): PositionStatus.LIQUIDATED,  # likewise
})
