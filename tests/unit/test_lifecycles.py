"""The RFQ, quote and position lifecycles are transition tables (engine/lifecycles.py):
every transition the engine makes is in its table, and an event the table does not allow
raises — it is a bug, not a rejection."""

from __future__ import annotations

import pytest

from engine import events as ev
from engine.apply import apply
from engine.lifecycles import (GONE, NEW, POSITION, QUOTE, RFQ, PositionStatus, QuoteState, RfqState,
                               TransitionError)
from engine.state import FREE_ROW, OPEN
from tests.scenarios import dsl

SETUP = """
@00:00:00 deposit agent=alice amount=1000 ref=a1 => deposited
@00:00:00 deposit agent=bob amount=1000 ref=b1 => deposited
@00:00:00 oracle market=BTC price=100000 => oracle_updated
@00:00:01 request trader=alice market=BTC side=long size=100 leverage=10 max_rate=1% => rfq_opened{rfq_id=1}
@00:00:02 quote maker=bob rfq=1 rate=0.1% collateral=100 => quote_submitted{quote_id=1}
@00:00:03 accept trader=alice rfq=1 quote=1 => position_opened{position_id=1}
@00:00:04 request trader=alice market=BTC side=long size=100 leverage=10 max_rate=1% => rfq_opened{rfq_id=2}
@00:00:05 cancel_rfq trader=alice rfq=2 => rfq_closed{reason=cancelled}
@00:00:06 close agent=alice position=1 => position_closed
"""


def test_the_stored_values_are_the_hashed_ones():
    """Naming the states changed no stored value: state hashes and snapshots stay as they were."""
    assert (FREE_ROW, OPEN) == (PositionStatus.FREE, PositionStatus.OPEN) == (0, 1)
    assert [s.value for s in RfqState] == ["open", "filled", "cancelled", "expired"]


def test_the_states_the_engine_reaches():
    state = dsl.run(SETUP).state
    assert state.rfq_state(1) == RfqState.FILLED.value
    assert state.rfq_state(2) == RfqState.CANCELLED.value
    assert state.rfq_state(3) == NEW and state.rfq_state(0) == NEW
    assert state.quote_state(1) == GONE and state.quote_state(2) == NEW


@pytest.mark.parametrize("lifecycle, state, happened", [
    (RFQ, RfqState.FILLED.value, "cancelled"),
    (RFQ, RfqState.OPEN.value, "opened"),
    (RFQ, GONE, "expired"),
    (QUOTE, QuoteState.LIVE.value, "vanished"),
    (QUOTE, GONE, "cancelled"),
    (POSITION, int(PositionStatus.FREE), "liquidated"),
    (POSITION, int(PositionStatus.OPEN), "opened"),
])
def test_an_unknown_transition_raises(lifecycle, state, happened):
    with pytest.raises(TransitionError, match="no transition from"):
        lifecycle.next(state, happened, 7)


def _next_seq(state):
    return state.last_seq + 1


def test_apply_refuses_events_its_tables_do_not_allow():
    state = dsl.run(SETUP).state
    seq = _next_seq(state)
    with pytest.raises(TransitionError, match="RFQ 2: no transition from 'cancelled' on 'expired'"):
        apply(state, ev.RfqClosed(seq, 0, 0, rfq_id=2, trader="alice", reason="expired", client_id="",
                                  transfers=[]))
    state = dsl.run(SETUP + "@00:00:07 request trader=alice market=BTC side=long size=100 leverage=10 "
                            "max_rate=1% => rfq_opened{rfq_id=3}\n"
                            "@00:00:08 quote maker=bob rfq=3 rate=0.1% collateral=100 => quote_submitted{quote_id=2}\n").state
    with pytest.raises(TransitionError, match="quote 2: no transition from 'live' on 'lost'"):
        apply(state, ev.QuoteReleased(_next_seq(state), 0, 0, quote_id=2, rfq_id=3, maker="bob", reason="lost",
                                      client_id="", transfers=[]))
