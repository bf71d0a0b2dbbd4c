"""The SDK and the reference agents against a real venue over loopback TCP: a whole life
cycle (RFQ, three makers' quotes, accept, funding at a boundary, a price jump, the keeper's
liquidation) in both encodings; subscriptions resumed across a reconnect with no gap and
no duplicate; a venue restart mid-session that loses no acknowledged command."""

from __future__ import annotations

import asyncio

import pytest

from agents import sdk
from agents.keeper import KeeperAgent
from agents.makers import AggressiveMaker, ConservativeMaker, InventoryMaker, MakerAgent
from engine import commands as c
from engine import events as ev
from engine import invariants, views
from engine.units import USDC_E6
from tests.gateway.conftest import eventually, free_port, journal_records
from tests.support import keypair

BOUNDARY_08_NS = 1_767_254_400 * 10**9  # 2026-01-01T08:00:00Z


@pytest.mark.parametrize("encoding", ["msgpack", "json"])
async def test_life_cycle_with_reference_agents(rig, encoding):
    keys = {name: keypair(30 + i) for i, name in enumerate(["trader", "conservative", "balanced", "aggressive",
                                                            "keeper"])}
    for key in keys.values():
        await rig.deposit(key, 1_000_000)
    await rig.price(0, 100_000)
    trader = await rig.connect(keys["trader"], encoding)
    account = await trader.subscribe(["account"])
    makers = [MakerAgent(await rig.connect(keys[name], encoding), cls(seed=i))
              for i, (name, cls) in enumerate([("conservative", ConservativeMaker), ("balanced", InventoryMaker),
                                               ("aggressive", AggressiveMaker)])]
    keeper = KeeperAgent(await rig.connect(keys["keeper"], encoding))
    tasks = [asyncio.ensure_future(agent.run()) for agent in (*makers, keeper)]
    try:
        # Let every agent's subscription be live before the RFQ.
        await eventually(lambda: rig.venue.hub.subscriber_count >= 5, "the agents' subscriptions")
        await rig.price(0, 100_000)  # makers quote once they have seen a price

        ack = await trader.request_quote(0, "long", 10_000 * USDC_E6, 10, 20_000_000)
        rfq = ack.first(ev.RfqOpened)
        await eventually(lambda: len(views.quotes(rig.venue.state, rfq.rfq_id)) == 3, "three quotes")
        quotes = views.quotes(rig.venue.state, rfq.rfq_id)
        best = min(quotes, key=lambda q: (q.funding_rate_e9, q.quote_id))
        assert best.maker == makers[2].client.agent  # the aggressive maker asks least
        conservative = next(q for q in quotes if q.maker == makers[0].client.agent)
        assert conservative.collateral_e6 == 5_000 * USDC_E6  # size / 2
        assert best.collateral_e6 == 500 * USDC_E6  # size / 20, the least the venue allows

        opened = (await trader.accept(rfq.rfq_id)).first(ev.PositionOpened)
        assert (opened.long_agent, opened.short_agent) == (trader.agent, best.maker)
        assert opened.funding_rate_e9 == best.funding_rate_e9 and opened.entry_price_e8 == 100_000 * 10**8
        await eventually(lambda: makers[2].strategy.exposure_e6.get(0) == -10_000 * USDC_E6, "the maker's fill")

        # Funding: the clock passes 08:00; the next batch carries a Tick that settles it.
        rig.clock.now_ns = BOUNDARY_08_NS + 10**9
        await rig.price(0, 100_000)
        funding = await _next(account, ev.FundingSettled)
        assert funding.boundary_ns == BOUNDARY_08_NS and funding.position_ids == [opened.position_id]
        hour_share = round(10_000 * USDC_E6 * best.funding_rate_e9 / 10**9 * (BOUNDARY_08_NS - opened.ts_ns)
                           / (8 * 3_600 * 10**9))
        assert abs(funding.long_to_short_e6[0] - hour_share) <= 1

        # A 6% drop: the 10x long is below maintenance (about 94 737) with equity left; the
        # keeper liquidates it before the engine would (the fake clock stands still).
        await rig.price(0, 94_000)
        liquidated = await _next(account, ev.PositionLiquidated)
        assert liquidated.keeper == keeper.client.agent and liquidated.side == "long"
        await eventually(lambda: keeper.stats["liquidated"] == 1, "the keeper's ack")
        assert keeper.rewards_e6 == liquidated.reward_e6 > 0
        await eventually(lambda: makers[2].strategy.exposure_e6.get(0) == 0, "the maker to see the close")
        assert views.positions(rig.venue.state) == []
        invariants.check(rig.venue.state)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _next(subscription: sdk.Subscription, kind: type):
    while True:
        event = await asyncio.wait_for(subscription.get(), 20)
        if type(event) is kind:
            return event


async def test_subscription_resumes_across_reconnects_without_gap_or_duplicate(rig):
    observer = await rig.connect(None, ping_interval_s=60)
    subscription = await observer.subscribe(["oracle"], from_seq=1)
    seen: list[int] = []

    async def read(n: int) -> None:
        while len(seen) < n:
            seen.append((await asyncio.wait_for(subscription.get(), 20)).seq)

    for round_ in range(4):
        await asyncio.gather(*[rig.price(round_ % 3, 100 + k) for k in range(50)])
        await read(25 + 50 * round_)  # part of this round's events, then the link drops
        observer.drop_connection()
        await asyncio.gather(*[rig.price(round_ % 3, 200 + k) for k in range(50)])
        await eventually(lambda: observer.connected, "the reconnect")
    await read(400)
    expected = [e.seq for r in journal_records(rig.venue) for e in r.events if type(e) is ev.OracleUpdated]
    assert seen == expected and len(expected) == 400
    assert observer.reconnects == 4


async def test_live_only_subscription_and_requests_in_flight_across_a_reconnect(rig):
    key = keypair(40)
    await rig.deposit(key)
    client = await rig.connect(key, "json")
    live = await client.subscribe(["rfqs"])  # from now on only
    futures = [client.send(c.RequestQuote(client.agent, 0, "long", 100 * USDC_E6, 10, 10_000_000))
               for _ in range(20)]
    client.drop_connection()  # some were sent, some perhaps executed; none answered yet
    results = await asyncio.gather(*futures)
    assert all(type(r) is sdk.Ack for r in results)
    assert len(views.rfqs(rig.venue.state)) == 20  # each executed exactly once
    opened = [r.first(ev.RfqOpened).rfq_id for r in results]
    assert sorted(opened) == list(range(1, 21))
    got = [(await asyncio.wait_for(live.get(), 20)).rfq_id for _ in range(20)]
    assert sorted(got) == list(range(1, 21)) and live.get_nowait() is None


async def test_restart_mid_session_loses_no_acknowledged_command(rig, tmp_path):
    # The restarted venue must listen where the client reconnects: a fixed port.
    port = free_port()
    await rig.venue.stop()
    from tests.gateway.conftest import start_venue
    rig.gateway_overrides = {"tcp_port": port}
    rig.venue = await start_venue(tmp_path, rig.clock, rig.gateway_overrides)
    key = keypair(41)
    await rig.deposit(key, 1_000_000)
    client = await rig.connect(key, reconnect_for_s=20)
    fills = await client.subscribe(["account"], from_seq=1)
    acks: list[sdk.Ack] = []
    rejected: list[sdk.Rejection] = []

    async def burst(n: int) -> None:
        for result in await asyncio.gather(*[client.send(c.RequestQuote(client.agent, k % 3, "short",
                                                                        (10 + k) * USDC_E6, 5, 5_000_000))
                                             for k in range(n)]):
            (acks if type(result) is sdk.Ack else rejected).append(result)

    first = asyncio.ensure_future(burst(200))
    await asyncio.sleep(0)  # the burst is on the wire; the venue stops under it
    await rig.restart()
    await first
    await burst(50)
    assert client.reconnects == 1
    assert rejected == [] and len(acks) == 250
    on_disk = {e.seq: e for r in journal_records(rig.venue) for e in r.events}
    for ack in acks:
        assert all(on_disk[e.seq] == e for e in ack.events)
    assert len({a.first(ev.RfqOpened).rfq_id for a in acks}) == 250  # no command executed twice
    assert len(views.rfqs(rig.venue.state)) == 250
    # The account stream resumed too: every RFQ exactly once, in order.
    seqs = []
    while len(seqs) < 251:  # the deposit, then the RFQs
        seqs.append((await asyncio.wait_for(fills.get(), 20)).seq)
    assert seqs == sorted(set(seqs))
    invariants.check(rig.venue.state)
