"""The TCP session's transition table: every transition it has, and none it has not."""

from __future__ import annotations

import itertools

import pytest

from adapters.gateway.session import TRANSITIONS, Session, SessionTransitionError, Step, after, allows


def test_the_table():
    assert after(Session.HELLO, Step.HELLO_AGENT) is Session.LOGIN
    assert after(Session.LOGIN, Step.LOGIN) is Session.OPEN
    assert after(Session.HELLO, Step.HELLO_OBSERVER) is Session.OPEN
    assert {after(state, Step.END) for state in (Session.HELLO, Session.LOGIN, Session.OPEN)} == {Session.CLOSED}


@pytest.mark.parametrize("state, step", [(state, step) for state, step in itertools.product(Session, Step)
                                         if (state, step) not in TRANSITIONS])
def test_an_unknown_transition_raises(state, step):
    assert not allows(state, step)
    with pytest.raises(SessionTransitionError, match=f"{state.name} --{step.value}-->"):
        after(state, step)


def test_closed_is_final_and_every_state_is_reachable():
    assert not any(allows(Session.CLOSED, step) for step in Step)
    reached, frontier = {Session.HELLO}, [Session.HELLO]
    while frontier:
        state = frontier.pop()
        for (start, _), end in TRANSITIONS.items():
            if start is state and end not in reached:
                reached.add(end)
                frontier.append(end)
    assert reached == set(Session)
