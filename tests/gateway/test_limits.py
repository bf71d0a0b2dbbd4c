"""Every map or queue at the edge that grows has a named bound, tested at the bound."""

from __future__ import annotations

import asyncio

import pytest

from adapters.gateway import edge, limits
from adapters.gateway.edge import ReplayGuard
from adapters.gateway.limits import RateLimits
from adapters.gateway.streams import PositionParties
from agents import sdk
from engine import commands as c
from engine import events as ev
from protocol import signing
from tests.gateway.conftest import eventually
from tests.support import agent_of, keypair


def test_rate_limit_buckets_forget_the_least_recently_seen_agent_at_the_bound():
    assert RateLimits(1.0, 1).capacity == limits.BUCKETS_MAX == 100_000
    buckets = RateLimits(1.0, 1, capacity=3)
    first = {agent: buckets.bucket_for(agent) for agent in "abc"}
    buckets.bucket_for("a")  # seen again: now the most recent
    buckets.bucket_for("d")  # one beyond the bound
    assert len(buckets) == 3
    assert buckets.bucket_for("a") is first["a"]  # kept (its spent tokens with it)
    assert buckets.bucket_for("b") is not first["b"]  # the least recently seen was forgotten: a fresh bucket


def test_replay_guard_refuses_beyond_its_capacity_and_forgets_what_the_window_left():
    assert ReplayGuard(5_000).capacity == edge.REPLAY_CACHE_MAX
    guard = ReplayGuard(window_ms=1_000, capacity=2)
    assert guard.seen("a", "s1", 10_000, 10_000) is False
    assert guard.seen("a", "s1", 10_000, 10_000) is True  # a replay
    assert guard.seen("a", "s2", 10_000, 10_000) is False
    assert guard.seen("a", "s3", 10_000, 10_000) is None  # full: refused (RATE_LIMITED), not remembered
    assert len(guard) == 2
    assert guard.seen("a", "s3", 11_500, 11_500) is False  # the window moved on: both left, O(1) each
    assert len(guard) == 1


def test_position_parties_are_pruned_when_positions_end():
    parties = PositionParties()
    parties.add(1, "L", "S")
    parties.add(2, "L", "S")
    assert parties.get(1) == ("L", "S") and len(parties) == 2
    parties.prune([1])
    assert 1 not in parties and parties.get(1) == () and len(parties) == 1


async def test_the_venue_prunes_a_closed_position_and_keeps_a_partly_closed_one(rig):
    trader, maker = keypair(60), keypair(61)
    for key in (trader, maker):
        await rig.deposit(key)
    await rig.price(0, 100_000)
    venue = rig.venue

    async def open_position() -> int:
        rfq = await venue.execute(c.RequestQuote(agent_of(trader), 0, "long", 100 * 10**6, 10, 5_000_000))
        rfq_id = rfq.events[0].rfq_id
        quote = await venue.execute(c.SubmitQuote(agent_of(maker), rfq_id, 1_000_000, 100 * 10**6))
        assert quote.rejection is None, quote.rejection
        accepted = await venue.execute(c.AcceptQuote(
            agent_of(trader), rfq_id, c.BEST_QUOTE,
            signing.sign(trader, signing.accept_message(rfq_id, "best"))))
        assert accepted.rejection is None, accepted.rejection
        return next(e.position_id for e in accepted.events if type(e) is ev.PositionOpened)

    whole, part = await open_position(), await open_position()
    assert whole in venue.position_agents and part in venue.position_agents
    closed = await venue.execute(c.ClosePosition(agent_of(trader), whole, 10_000))
    assert closed.rejection is None, closed.rejection
    halved = await venue.execute(c.ClosePosition(agent_of(maker), part, 5_000))
    assert halved.rejection is None, halved.rejection
    assert whole not in venue.position_agents  # ended: pruned
    assert venue.position_agents.get(part) == (agent_of(trader), agent_of(maker))  # still open: kept
    assert len(venue.position_agents) == 1


async def test_sdk_in_flight_requests_are_bounded(rig):
    assert sdk.IN_FLIGHT_MAX == 4_096
    key = keypair(62)
    await rig.deposit(key)
    client = await rig.connect(key, in_flight_max=3)
    waiting = [client.send(c.CancelRfq(client.agent, 1)) for _ in range(3)]  # at the bound
    with pytest.raises(sdk.TooManyInFlight) as refused:
        client.send(c.CancelRfq(client.agent, 1))
    assert refused.value.in_flight_max == 3
    assert [r.code for r in await asyncio.gather(*waiting)] == ["UNKNOWN_RFQ"] * 3
    assert (await client.send(c.CancelRfq(client.agent, 1))).code == "UNKNOWN_RFQ"  # room again


async def test_sdk_subscription_queue_is_bounded_and_resumable(rig):
    assert sdk.SUBSCRIPTION_QUEUE_MAX == 100_000
    observer = await rig.connect(None)
    oracle = await observer.subscribe(["oracle"], from_seq=1, queue_max=2)
    for usd in (100, 101, 102):
        await rig.price(0, usd)
    await eventually(lambda: oracle.ended is not None, "the third event, one beyond the queue")
    read = [await oracle.get(), await oracle.get()]  # the two it held
    with pytest.raises(sdk.ConnectionClosed) as ended:
        await oracle.get()
    assert ended.value.code == "SLOW_CONSUMER" and ended.value.detail["queue_max"] == 2
    assert oracle.last_seq == read[-1].seq
    resumed = await observer.subscribe(["oracle"], from_seq=oracle.last_seq + 1)
    assert (await resumed.get()).price_e8 == 102 * 10**8  # no gap
