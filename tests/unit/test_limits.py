"""Every engine limit, at the limit: the command that would pass it is rejected with
LIMIT_REACHED and ``detail.limit`` naming it; one below it still executes
(docs/engine.md, "Limits")."""

from __future__ import annotations

from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import commands as cmd
from engine import views
from engine.core import execute, tick_stopped_at_bound
from engine.invariants import check
from engine.markets import default_config
from engine.rejections import LIMIT_REACHED, Rejected
from engine.state import State
from tests.scenarios import dsl

SETUP = """
@00:00:00 deposit agent=alice amount=10000 ref=a1 => deposited
@00:00:00 deposit agent=bob amount=10000 ref=b1 => deposited
@00:00:00 deposit agent=carol amount=10000 ref=c1 => deposited
@00:00:00 oracle market=BTC price=100000 => oracle_updated
"""
REQUEST = "request trader=alice market=BTC side=long size=100 leverage=10 max_rate=1% expires=60s"


def _limit(outcome, name: str, maximum: int) -> dict:
    assert isinstance(outcome, Rejected) and outcome.code == LIMIT_REACHED, outcome
    assert outcome.detail["limit"] == name and outcome.detail["max"] == maximum
    return outcome.detail


def _run(text: str, **limits):
    return dsl.run(SETUP + text, default_config(**limits))


def _execute(result, command, at: str):
    outcome = execute(result.state, command, dsl.parse_time(at), 10_000)
    check(result.state)
    return outcome


def test_open_rfqs_per_agent():
    result = _run(f"@00:00:01 {REQUEST} => rfq_opened\n@00:00:01 {REQUEST} => rfq_opened\n",
                  open_rfqs_per_agent_max=2)
    request = dsl.build_command(result.state.config, "request", dict(
        a.split("=") for a in REQUEST.split()[1:]), 0)
    detail = _limit(_execute(result, request, "@00:00:02"), "open_rfqs_per_agent_max", 2)
    assert detail["open_rfqs"] == 2
    _execute(result, cmd.CancelRfq("alice", 1), "@00:00:02")  # one ends: room again
    assert not isinstance(_execute(result, request, "@00:00:02"), Rejected)


def test_live_quotes_per_agent_and_a_replacement_at_the_limit():
    result = _run(f"@00:00:01 {REQUEST} => rfq_opened\n@00:00:01 {REQUEST} => rfq_opened\n"
                  f"@00:00:01 {REQUEST} => rfq_opened\n"
                  "@00:00:02 quote maker=bob rfq=1 rate=0.1% collateral=100 valid=30s => quote_submitted\n"
                  "@00:00:02 quote maker=bob rfq=2 rate=0.1% collateral=100 valid=30s => quote_submitted\n",
                  live_quotes_per_agent_max=2)
    detail = _limit(_execute(result, cmd.SubmitQuote("bob", 3, 1_000_000, 100_000_000), "@00:00:03"),
                    "live_quotes_per_agent_max", 2)
    assert detail["live_quotes"] == 2
    # Replacing a quote does not add one: allowed at the limit.
    outcome = _execute(result, cmd.SubmitQuote("bob", 2, 500_000, 100_000_000), "@00:00:03")
    assert [type(e).__name__ for e in outcome] == ["QuoteReleased", "QuoteSubmitted"]
    assert result.state.live_quotes_of == {"bob": 2}


def test_positions_max_refuses_an_accept_and_an_auto_accept_does_not_fill():
    text = (f"@00:00:01 {REQUEST} => rfq_opened\n"
            "@00:00:02 quote maker=bob rfq=1 rate=0.1% collateral=100 => quote_submitted\n"
            "@00:00:03 accept trader=alice rfq=1 => position_opened\n"
            f"@00:00:04 {REQUEST} => rfq_opened\n"
            "@00:00:05 quote maker=bob rfq=2 rate=0.1% collateral=100 => quote_submitted\n"
            "@00:00:06 accept trader=alice rfq=2 => rejected LIMIT_REACHED\n"
            "@00:00:06 request trader=alice market=BTC side=long size=100 leverage=10 max_rate=1% expires=5s "
            "auto=yes target=0.5% => rfq_opened{rfq_id=3}\n"
            "@00:00:07 quote maker=carol rfq=3 rate=0.1% collateral=100 valid=30s => quote_submitted\n"
            "@00:00:11 tick => quote_released{reason=rfq_closed}, rfq_closed{rfq_id=3 reason=expired}\n")
    result = _run(text, positions_max=1)
    outcome = _execute(result, cmd.AcceptQuote("alice", 2), "@00:00:12")
    detail = _limit(outcome, "positions_max", 1)
    assert detail["positions"] == 1


def test_agents_max_refuses_a_new_depositor_and_a_new_keeper():
    result = _run(f"@00:00:01 {REQUEST} => rfq_opened\n"
                  "@00:00:02 quote maker=bob rfq=1 rate=0.1% collateral=100 => quote_submitted\n"
                  "@00:00:03 accept trader=alice rfq=1 => position_opened\n"
                  "@00:00:04 oracle market=BTC price=90000 => oracle_updated, liquidation_watch\n", agents_max=3)
    detail = _limit(_execute(result, cmd.Deposit("dave", 1_000_000, "d1"), "@00:00:05"), "agents_max", 3)
    assert detail["agents"] == 3
    assert not isinstance(_execute(result, cmd.Deposit("alice", 1_000_000, "a2"), "@00:00:05"), Rejected)
    _limit(_execute(result, cmd.Liquidate("dave", 1), "@00:00:05"), "agents_max", 3)
    outcome = _execute(result, cmd.Liquidate("carol", 1), "@00:00:05")
    assert type(outcome[0]).__name__ == "PositionLiquidated"


def test_deposit_refs_are_remembered_for_ever_and_bounded():
    result = _run("", deposit_refs_max=4)
    assert len(result.state.deposit_refs) == 3
    assert not isinstance(_execute(result, cmd.Deposit("alice", 1, "a2"), "@00:00:01"), Rejected)
    _limit(_execute(result, cmd.Deposit("alice", 1, "a3"), "@00:00:01"), "deposit_refs_max", 4)
    # A repeat is still recognised, however late: DUPLICATE, never a second credit.
    late = _execute(result, cmd.Deposit("alice", 1, "a1"), "@300d00:00:00")
    assert late.code == "DUPLICATE" and late.detail["first_seq"] == 1


def test_client_ids_max_and_the_window_trimmed_from_its_left():
    result = _run("", client_ids_max=2, idempotency_window_ms=10_000)
    state = result.state
    for i, at in enumerate(("@00:00:01", "@00:00:02")):
        assert not isinstance(_execute(result, cmd.Withdraw("alice", 1, "w", f"c{i}"), at), Rejected)
    # Full, and both still inside the window: refused, with when to retry.
    detail = _limit(_execute(result, cmd.Withdraw("alice", 1, "w", "c2"), "@00:00:05"), "client_ids_max", 2)
    assert detail["retry_after_ns"] == dsl.parse_time("@00:00:11") + 1
    # Without a client_id nothing is remembered: allowed.
    assert not isinstance(_execute(result, cmd.Withdraw("alice", 1, "w"), "@00:00:05"), Rejected)
    # Once the oldest leaves the window there is room; it is forgotten as the new one is recorded.
    assert not isinstance(_execute(result, cmd.Withdraw("alice", 1, "w", "c2"), "@00:00:11.000000001"), Rejected)
    assert list(state.client_ids) == [("alice", "c1"), ("alice", "c2")]
    assert [key for _, _, key in state.client_id_order] == list(state.client_ids)
    # c0 left the window: it executes again.
    assert not isinstance(_execute(result, cmd.Withdraw("alice", 1, "w", "c0"), "@00:00:12.5"), Rejected)


def test_the_window_trim_is_constant_time():
    """The trim pops from a deque, never scans the dict: 20 000 ids through a short window."""
    state = State(default_config(idempotency_window_ms=1, client_ids_max=1_000))
    execute(state, cmd.Deposit("alice", 10**12, "a"), 0, 0)
    for i in range(20_000):
        outcome = execute(state, cmd.Withdraw("alice", 1, "w", f"c{i}"), i * 400_000, i + 1)
        assert not isinstance(outcome, Rejected)
    assert len(state.client_ids) <= 3 and isinstance(state.client_id_order, deque)
    check(state)


@pytest.mark.parametrize("field", ["open_rfqs_per_agent_max", "live_quotes_per_agent_max", "agents_max",
                                   "positions_max", "client_ids_max", "deposit_refs_max"])
def test_limits_are_validated(field):
    with pytest.raises(ValueError, match=field):
        default_config(**{field: 0})


def test_apply_refuses_a_transfer_that_overdraws_an_account():
    """The money paths assert, with the reason: no account but external goes below zero."""
    from engine import events as ev
    from engine.apply import apply

    state = _run("").state
    overdraw = ev.Withdrawn(state.last_seq + 1, 0, 0, agent="alice", amount_e6=10_001_000_000, destination="w",
                            client_id="", transfers=[ev.Transfer(ev.FREE, "alice", ev.EXTERNAL, "", 10_001_000_000,
                                                                 "withdraw")])
    with pytest.raises(AssertionError, match="no agent account may go below zero"):
        apply(state, overdraw)
    fees = ev.Withdrawn(state.last_seq + 1, 0, 0, agent="alice", amount_e6=1, destination="w", client_id="",
                        transfers=[ev.Transfer(ev.FEES, "", ev.EXTERNAL, "", 1, "withdraw")])
    with pytest.raises(AssertionError, match="fee account goes to -1"):
        apply(state, fees)


# -- a Tick's work (tick_events_max) --------------------------------------------------------

T0_NS = 1_767_225_600_000_000_000
MS_NS = 1_000_000


def _expiring_world(events_max: int, rfqs: list[tuple[int, list[int]]]) -> State:
    """alice's RFQs (lifetime ms, and bob's quotes on it by validity ms), all decided at T0."""
    state = State(default_config(tick_events_max=events_max))
    commands = [cmd.Deposit("alice", 10**12, "a"), cmd.Deposit("bob", 10**12, "b"),
                cmd.OracleUpdate(0, 100_000 * 10**8, 10**8, T0_NS, "test")]
    for rfq_id, (lifetime_ms, quotes) in enumerate(rfqs, start=1):
        commands.append(cmd.RequestQuote("alice", 0, "long", 100 * 10**6, 10, 10_000_000, expires_in_ms=lifetime_ms))
        commands += [cmd.SubmitQuote("bob", rfq_id, 1_000_000, 10 * 10**6, valid_for_ms=v) for v in quotes]
    for cmd_id, command in enumerate(commands, start=1):
        assert not isinstance(execute(state, command, T0_NS + cmd_id, cmd_id), Rejected)
    return state


def _tick_until_done(state: State, at_ns: int, cmd_id: int) -> list[list]:
    """Ticks at ``at_ns`` while the last one stopped at the bound (as the sequencer does)."""
    ticks = []
    while True:
        ticks.append(execute(state, cmd.Tick(), at_ns + len(ticks), cmd_id + len(ticks)))
        check(state)
        if not tick_stopped_at_bound(state.config, ticks[-1]):
            return ticks


@given(events_max=st.integers(1, 6),
       rfqs=st.lists(st.tuples(st.integers(1_000, 5_000), st.lists(st.integers(1_000, 5_000), max_size=3)),
                     min_size=1, max_size=12))
@settings(max_examples=60, deadline=None)
def test_a_bounded_tick_leaves_the_rest_to_the_next_and_ends_where_one_unbounded_tick_does(events_max, rfqs):
    bounded, unbounded = _expiring_world(events_max, rfqs), _expiring_world(0, rfqs)
    at_ns = T0_NS + 6_000 * MS_NS  # every RFQ and quote past its lifetime
    ticks = _tick_until_done(bounded, at_ns, 1_000)
    [everything] = _tick_until_done(unbounded, at_ns, 1_000)
    for events in ticks:
        closed = [e for e in events if type(e).__name__ == "RfqClosed"]
        expired = [e for e in events if type(e).__name__ == "QuoteReleased" and e.reason == "expired"]
        assert len(closed) <= events_max and len(expired) <= events_max  # one round at most each
    assert all(len(events) >= events_max for events in ticks[:-1])  # each stopped at its bound
    # The same work, only spread: the same RFQs closed and quotes released, the same balances.
    kinds = lambda events: sorted((type(e).__name__, getattr(e, "rfq_id", 0), getattr(e, "quote_id", 0),
                                   getattr(e, "reason", "")) for e in events)
    assert kinds([e for events in ticks for e in events]) == kinds(everything)
    assert not bounded.rfqs and not bounded.quotes
    for agent in ("alice", "bob"):
        assert views.account(bounded, agent) == views.account(unbounded, agent)
