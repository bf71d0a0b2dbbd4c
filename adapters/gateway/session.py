"""The TCP session's lifecycle (DESIGN §8) as a transition table; an unknown transition raises.

    HELLO --hello (agent)----> LOGIN --login--> OPEN
    HELLO --hello (observer)-------------------> OPEN
    HELLO | LOGIN | OPEN --end--> CLOSED

A frame that is not allowed in the current state is the peer's mistake and is answered
(``PROTOCOL_ERROR``, ``NOT_AUTHENTICATED``) before any transition is attempted: the gateway
asks ``allows`` first. A transition outside the table is our bug: ``SessionTransitionError``.
"""

from __future__ import annotations

import enum


class Session(enum.IntEnum):
    HELLO = 0  # connected; the first frame must be a Hello
    LOGIN = 1  # a Challenge was sent; the Login must answer it
    OPEN = 2  # welcomed (an agent logged in, or an observer)
    CLOSED = 3  # ended; nothing more is read or sent


class Step(enum.Enum):
    HELLO_AGENT = "hello_agent"
    HELLO_OBSERVER = "hello_observer"
    LOGIN = "login"
    END = "end"


TRANSITIONS: dict[tuple[Session, Step], Session] = {
    (Session.HELLO, Step.HELLO_AGENT): Session.LOGIN,
    (Session.HELLO, Step.HELLO_OBSERVER): Session.OPEN,
    (Session.LOGIN, Step.LOGIN): Session.OPEN,
    (Session.HELLO, Step.END): Session.CLOSED,
    (Session.LOGIN, Step.END): Session.CLOSED,
    (Session.OPEN, Step.END): Session.CLOSED,
}


class SessionTransitionError(RuntimeError):
    """A transition the table does not have (a bug in the gateway, never the peer's doing)."""


def allows(state: Session, step: Step) -> bool:
    return (state, step) in TRANSITIONS


def after(state: Session, step: Step) -> Session:
    """The state ``step`` leads to from ``state``; raises ``SessionTransitionError`` if none."""
    try:
        return TRANSITIONS[state, step]
    except KeyError:
        raise SessionTransitionError(f"no TCP session transition {state.name} --{step.value}-->") from None
