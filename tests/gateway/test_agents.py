"""The reference agents: the makers' quoting decision as a pure strategy (the backtest's
interface), a backtest of a reference maker, and the demo agents over real TCP."""

from __future__ import annotations

import asyncio

from agents import demo, sdk
from agents.makers import AggressiveMaker, ConservativeMaker, InventoryMaker, MakerAgent
from engine import events as ev
from engine import invariants, views
from engine.markets import default_config
from engine.units import USDC_E6
from engine.views import PositionView, RfqView
from protocol.strategy import QuoteIntent, Strategy
from tests.gateway.conftest import WAIT_S, eventually, journal_records
from tests.support import agent_of, keypair

PRICE_E8 = 100_000 * 10**8


def rfq(side="long", size_usdc=1_000, max_rate_e9=50_000_000, market=0, trader="someone") -> RfqView:
    return RfqView(1, trader, market, side, size_usdc * USDC_E6, 10, max_rate_e9, 0, 0, 0, False, None)


def maker(cls=InventoryMaker, **params) -> InventoryMaker:
    strategy = cls(seed=1, jitter_e9=0, **params)
    strategy.on_start(default_config(), "me")
    return strategy


def fill(strategy, side_of_maker: str, size_usdc: int, position_id: int = 1, market: int = 0) -> None:
    long_agent, short_agent = ("me", "them") if side_of_maker == "long" else ("them", "me")
    strategy.on_fill(PositionView(position_id, market, long_agent, short_agent, "long", size_usdc * USDC_E6,
                                  size_usdc * USDC_E6, PRICE_E8, 0, 0, 0, 0, 0, 0), 0)


def test_makers_satisfy_the_backtest_strategy_interface():
    for cls in (InventoryMaker, ConservativeMaker, AggressiveMaker):
        assert isinstance(cls(seed=3), Strategy)
    intent = maker().on_rfq(rfq(), PRICE_E8, 0)
    assert type(intent) is QuoteIntent


def test_quote_is_deterministic_for_a_seed():
    first = [InventoryMaker(seed=5).on_rfq(rfq(size_usdc=s), PRICE_E8, 0) for s in range(10, 500, 37)]
    again = [InventoryMaker(seed=5).on_rfq(rfq(size_usdc=s), PRICE_E8, 0) for s in range(10, 500, 37)]
    assert first == again


def test_inventory_prices_risk_and_the_limit_stops_quoting():
    m = maker(base_rate_e9=1_000_000, inventory_rate_e9=10_000_000, trend_rate_e9=0, risk_limit_e6=10_000 * USDC_E6)
    flat = m.on_rfq(rfq("long", 1_000), PRICE_E8, 0).funding_rate_e9
    assert flat == 1_000_000 + 1_000_000  # base + 10% of the limit × 1%
    fill(m, "short", 5_000)  # the maker is now short 5 000
    adding = m.on_rfq(rfq("long", 1_000), PRICE_E8, 0).funding_rate_e9  # would be short 6 000
    reducing = m.on_rfq(rfq("short", 1_000), PRICE_E8, 0).funding_rate_e9  # would be short 4 000
    assert reducing < flat == adding and reducing == 0
    assert m.on_rfq(rfq("long", 5_001), PRICE_E8, 0) is None  # beyond the risk limit
    m.on_event(ev.PositionClosed(1, 0, 0, 1, "them", "close", 10_000, PRICE_E8, 0, 0, 5_000 * USDC_E6, 0, 0, 0, 0, 0,
                                 "", []), 0)
    assert m.exposure_e6[0] == 0 and m.mine == {}


def test_trend_and_the_rfq_cap():
    m = maker(trend_rate_e9=100_000_000, ema_alpha=0.5)
    for price in (100_000, 101_000, 102_000, 103_000):
        m.on_event(ev.OracleUpdated(1, 0, 0, 0, price * 10**8, 1, 0, ""), 0)
    rising = PRICE_E8 * 104 // 100
    short_maker = m.on_rfq(rfq("long"), rising, 0).funding_rate_e9  # the trader buys into the rise
    long_maker = m.on_rfq(rfq("short"), rising, 0).funding_rate_e9
    assert short_maker > long_maker
    m = maker()
    assert m.on_rfq(rfq("long", max_rate_e9=0), PRICE_E8, 0) is None  # above the RFQ's max
    assert m.on_rfq(rfq(), 0, 0) is None  # no price yet
    assert m.on_rfq(rfq(trader="me"), PRICE_E8, 0) is None  # never its own RFQ


def test_collateral_follows_the_leverage_and_the_venue_floor():
    assert maker(ConservativeMaker).quote_for(rfq(), PRICE_E8, 0) == maker(ConservativeMaker).on_rfq(rfq(), PRICE_E8, 0)
    conservative, aggressive = maker(ConservativeMaker), maker(AggressiveMaker, leverage=50)
    assert conservative.on_rfq(rfq(size_usdc=1_001), PRICE_E8, 0).collateral_e6 == 500_500_000
    assert aggressive.on_rfq(rfq(size_usdc=1_001), PRICE_E8, 0).collateral_e6 == 50_050_000  # size / 20


def test_backtest_runs_a_reference_maker(tmp_path):
    from replay.backtest import backtest
    from replay.generate import generate

    config = default_config()
    generate(tmp_path / "data", 1_500, seed=4, config=config, progress=False)
    result = backtest(tmp_path / "data", "agents.makers:AggressiveMaker", config, seed=2)
    again = backtest(tmp_path / "data", AggressiveMaker(seed=2), config, seed=2)
    assert result.pnl_e6 == again.pnl_e6
    assert result.rfqs_seen > 0 and result.quotes_submitted > 0 and result.fills > 0


async def test_demo_agents_trade_over_tcp(rig):
    config = rig.venue.config
    for role, index in demo.roles(config.demo.traders):
        await demo.fund(rig.venue, str(sdk.demo_keypair(config.demo.seed, role, index).pubkey()), 10)
    await rig.price(0, 65_000)
    await rig.price(1, 3_200)
    await rig.price(2, 150)
    tasks = await demo.start(rig.venue)
    try:
        # Hedging is off on this rig: the arbitrage maker has no exchange to price from and stays out.
        assert rig.venue.hedger.sink is None and demo.arbitrage_feed(rig.venue) is None
        assert len(tasks) == config.demo.traders + len(demo.MAKERS) - 1 + 1
        assert "demo-maker-arbitrage" not in {task.get_name() for task in tasks}
        trader = str(sdk.demo_keypair(config.demo.seed, "trader", 0).pubkey())
        assert views.account(rig.venue.state, trader).free_e6 == config.demo.faucet_usdc * USDC_E6  # topped up
        # Makers quote once they have seen a price after subscribing: the oracle moves each
        # time the agents do something, until two positions are open.
        prices = {0: 65_000, 1: 3_200, 2: 150}
        activity = rig.venue.hub.subscribe(1, lambda e: type(e) is not ev.OracleUpdated, queue_max=1_000_000)
        fills, step = 0, 0
        async with asyncio.timeout(WAIT_S):
            async for events in activity.batches():
                fills += sum(type(e) is ev.PositionOpened for e in events)
                if fills >= 2:
                    break
                step += 1
                for market, usd in prices.items():
                    await rig.price(market, usd * (1 + (step % 5) / 1_000))
        activity.close()
        assert fills >= 2
        assert not any(task.done() for task in tasks)
        invariants.check(rig.venue.state)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    deposits = [e.amount_e6 for r in journal_records(rig.venue) for e in r.events if type(e) is ev.Deposited]
    agents = config.demo.traders + len(demo.MAKERS) + 1
    assert deposits == [10] * agents + [config.demo.faucet_usdc * USDC_E6 - 10] * agents  # topped up, not doubled
    await eventually(lambda: views.books(rig.venue.state).live_quotes == 0, "the makers' quotes to be cancelled")


async def test_a_maker_quotes_at_once_from_the_welcome_prices(rig):
    """A maker that connects after the last price update quotes without waiting for the
    next one: the Welcome carries each market's last durable price."""
    maker_key, trader_key = keypair(71), keypair(72)
    await rig.deposit(maker_key, 1_000_000)
    await rig.deposit(trader_key)
    await rig.price(1, 3_200)
    await rig.price(1, 3_210)
    client = await rig.connect(maker_key)
    assert [(p.market, p.price_e8) for p in client.welcome.prices] == [(1, 3_210 * 10**8)]  # no price yet for 0, 2
    agent = MakerAgent(client, ConservativeMaker(seed=1))
    task = asyncio.create_task(agent.run())
    try:
        await eventually(lambda: rig.venue.hub.subscriber_count == 1, "the maker's subscription")
        trader = await rig.connect(trader_key)
        await trader.request_quote(1, "long", 1_000 * USDC_E6, 10, 50_000_000)
        await eventually(lambda: views.books(rig.venue.state).live_quotes == 1, "the maker's quote")
        quote = next(iter(rig.venue.state.quotes.values()))
        assert quote.maker == agent_of(maker_key)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
