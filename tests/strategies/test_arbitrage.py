"""The arbitrage maker against real parts: its hedge as the backtest counts it (by hand), its
feed on a Binance simulator over loopback through the real ccxt client (quotes when healthy,
skips when the simulator is made down through ``POST /sim/faults``, quotes again after), and
live: a venue with its hedger and embedded simulator, the maker over the SDK, an RFQ it wins
→ the hedge order with the derived client order id on the simulator (waited on, never slept)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import aiohttp
import pytest

from adapters.hedging.exchanges import make_client
from adapters.hedging.hedger import client_order_id
from adapters.hedging.sim.binance import BinanceSim
from adapters.hedging.sim.server import start
from agents import arbitrage as arb
from agents import demo, sdk
from engine import commands as cmd
from engine import events as ev
from engine.markets import default_config
from engine.units import FUNDING_INTERVAL_NS, NS_PER_HOUR, USDC_E6
from protocol.orderbook import hedge_cost_bps
from protocol.strategy import HedgePnl
from tests.strategies.test_pricing import ASKS, BIDS, NOW, P, closed, opened, rfq
from tests.support import FakeClock, agent_of, keypair
from venue import hedging as vh
from venue.app import Venue
from venue.config import load


class BookFeed:
    """A fixed funding rate and book (hand-built inputs for the hedge book)."""

    def funding_rate_e9(self, market, now_ns):
        return 100_000  # 0.01% per 8 h

    def book(self, market, price_e8, now_ns):
        return BIDS, ASKS

    def healthy(self, market, now_ns):
        return True


def test_the_hedge_costs_funds_and_marks_by_hand():
    m = arb.ArbitrageMaker(seed=1, feed=BookFeed(), fee_bps=4.0)
    m.on_start(default_config(), "m")
    m.on_event(ev.OracleUpdated(1, NOW, 1, 0, P, P // 10_000, NOW, "t"), NOW)
    # The maker sells 1 BTC on the venue (100 000 USDC at 100 000): the hedge buys 1 BTC through the
    # book — half spread 0.5 bp + impact 2.5 bp + fee 4 bp = 4.75 bp of 100 000 USDC.
    m.on_event(opened(2, 7, "long", 100_000_000_000, long_agent="t", short_agent="m"), NOW)
    assert m.hedge.qty == {0: 1.0} and m.hedge_pnl(NOW) == HedgePnl(47_500_000, 0, 0)
    # 8 h later the price is 101 000: the long hedge paid one interval of 0.01% on 100 000 and
    # gained 1 000 USDC; the venue leg lost the same 1 000.
    later = NOW + FUNDING_INTERVAL_NS
    m.on_event(ev.OracleUpdated(3, later, 3, 0, P + P // 100, P // 10_000, later, "t"), later)
    assert m.hedge_pnl(later) == HedgePnl(47_500_000, -10_000_000, 1_000_000_000)
    assert m.hedge_pnl(later).total_e6 == 1_000_000_000 - 10_000_000 - 47_500_000
    # Half closed: the hedge sells 0.5 BTC (half spread + fee, no impact at 0.5) at 101 000.
    m.on_event(closed(4, 7, 50_000_000_000, 50_000_000_000), later)
    assert m.hedge.qty == {0: pytest.approx(0.5)}
    assert m.hedge_pnl(later).cost_e6 == round(47_500_000 + 50_500_000_000 * 4.5 / 1e4)
    # Fully closed: no hedge left, its PnL is realized (the mark stays), no more funding accrues.
    m.on_event(closed(5, 7, 50_000_000_000, 0), later)
    assert m.hedge.qty == {0: 0.0} and m.hedge_pnl(later + NS_PER_HOUR).mark_e6 == 1_000_000_000
    assert m.hedge_pnl(later + NS_PER_HOUR).funding_e6 == -10_000_000
    # Someone else's position moves nothing.
    m.on_event(opened(6, 8, "long", 100_000_000_000, long_agent="t", short_agent="x"), later)
    assert m.hedge.trades == 3


def test_a_book_too_thin_for_the_hedge_takes_the_rest_at_its_last_level():
    # 7 BTC against 6.5 on the asks: 0.5 @ 100 005, 1 @ 100 010, 5 @ 100 020, 0.5 more @ 100 020.
    average = (0.5 * 100_005 + 1 * 100_010 + 5.5 * 100_020) / 7
    assert arb.fill_cost_bps(BIDS, ASKS, "buy", 7.0, 4.0) == pytest.approx(
        0.5 + (average - 100_005) / 100_000 * 1e4 + 4.0)
    assert arb.fill_cost_bps(BIDS, ASKS, "buy", 1.0, 4.0) == hedge_cost_bps(BIDS, ASKS, "buy", 1.0, 4.0)
    assert arb.fill_cost_bps([], ASKS, "buy", 1.0, 4.0) == 4.0


@pytest.fixture
async def simulator():
    sim = BinanceSim(seed=1, clock=lambda: 1_000.0)  # frozen: the book stays the one the test reads
    runner, port = await start(sim.app())
    url = f"http://127.0.0.1:{port}"
    client = make_client("binanceusdm", url, None, rate_limit_ms=1)
    async with aiohttp.ClientSession(url) as session:
        yield sim, client, session
    await client.close()
    await runner.cleanup()


async def set_outage(session: aiohttp.ClientSession, outage: bool) -> None:
    async with session.post("/sim/faults", json={"outage": outage}) as response:
        assert (await response.json())["outage"] is outage


async def test_the_maker_quotes_from_the_simulator_and_stops_while_it_is_down(simulator):
    sim, client, session = simulator
    feed = arb.CcxtFeed(client, {0: "BTC/USDT:USDT"}, failures_max=2, stale_s=3_600)
    m = arb.ArbitrageMaker(seed=1, feed=feed, fee_bps=4.0, edge_e9=50_000, jitter_e9=0)
    m.on_start(default_config(), "arb")
    price_e8 = int(sim.books["BTCUSDT"].reference * 10**8)
    ask = rfq(size_e6=10_000_000_000)  # 10 000 USDC: 0.1 BTC, inside the simulator's depth

    assert m.on_rfq(ask, price_e8, NOW) is None and m.skipped == {"hedge_unhealthy": 1}  # never polled yet
    await feed.refresh()
    intent = m.on_rfq(ask, price_e8, NOW)
    book = sim.books["BTCUSDT"]  # what ccxt fetched: premiumIndex's 0.0001 per 8 h and this book
    cost = hedge_cost_bps([[float(p), float(q)] for p, q in book.bids], [[float(p), float(q)] for p, q in book.asks],
                          "buy", 0.1, 4.0)
    assert m.last == arb.Quote(100_000, "buy", pytest.approx(cost), m.last.rate_e9)
    assert intent.funding_rate_e9 == arb.arbitrage_rate_e9(100_000, -1, cost, 24 * NS_PER_HOUR, 50_000)

    await set_outage(session, True)
    await feed.refresh()  # one failed poll: below failures_max, still quoted
    assert m.on_rfq(ask, price_e8, NOW) is not None and feed.failures[0] == 1
    await feed.refresh()  # the second in a row: the market is unhealthy, no quote
    assert m.on_rfq(ask, price_e8, NOW) is None and m.skipped["hedge_unhealthy"] == 2

    await set_outage(session, False)
    await feed.refresh()  # one good poll: quoted again
    assert feed.failures[0] == 0 and m.on_rfq(ask, price_e8, NOW) == intent
    assert m.skipped["hedge_unhealthy"] == 2


ARB, TRADER = keypair(51), keypair(52)


class Observed(arb.ArbitrageMaker):
    """The real maker, telling the test each answer it gave (the event to wait on)."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.answers: asyncio.Queue = asyncio.Queue()

    def on_rfq(self, rfq, oracle_price_e8, now_ns):
        intent = super().on_rfq(rfq, oracle_price_e8, now_ns)
        self.answers.put_nowait((rfq.rfq_id, intent))
        return intent


async def test_a_fill_of_the_arbitrage_maker_is_hedged_on_the_simulator(tmp_path):
    cfg = load(env={}, overrides={
        "venue": {"data_dir": str(tmp_path / "venue"), "demo": False, "dev": True},
        "gateway": {"tcp_port": 0, "http_port": 0}, "oracle": {"source": "none"}, "projections": {"sql": False},
        "settlement": {"backend": "none"},
        "hedging": {"enabled": "on", "makers": [agent_of(ARB)], "exchanges": [{"name": "binance"}]}})
    clock = FakeClock()
    venue = Venue(cfg, clock=clock)
    await venue.start()
    clients, tasks = [], []
    try:
        for key in (ARB, TRADER):
            outcome = await venue.execute(cmd.Deposit(agent_of(key), 100_000 * USDC_E6, f"dep-{agent_of(key)}"))
            assert outcome.rejection is None
        outcome = await venue.execute(cmd.OracleUpdate(0, P, P // 10_000, clock(), "test"))
        assert outcome.rejection is None
        sim = venue.hedger.sims["binance"]
        orders: asyncio.Queue = asyncio.Queue()

        async def on_order(stage: str, params: dict) -> None:
            if stage == "after":
                orders.put_nowait(params)

        sim.on_order = on_order
        quoted: asyncio.Future = asyncio.get_running_loop().create_future()

        def on_durable(events: list) -> None:  # the hub's listener: the maker's quote, once durable
            for e in events:
                if type(e) is ev.QuoteSubmitted and e.maker == agent_of(ARB) and not quoted.done():
                    quoted.set_result(e)

        venue.hub.listen(on_durable)
        feed = demo.arbitrage_feed(venue)  # what the demo runs: the first hedge exchange, every market
        assert feed is not None and feed.symbols == {0: "BTC/USDT:USDT", 1: "ETH/USDT:USDT", 2: "SOL/USDT:USDT"}
        clients.append(await sdk.connect("127.0.0.1", venue.tcp_port, ARB))
        maker = Observed(seed=1)
        tasks.append(asyncio.create_task(arb.ArbitrageAgent(clients[-1], maker, feed).run()))
        trader = await sdk.connect("127.0.0.1", venue.tcp_port, TRADER)
        clients.append(trader)

        ack = await trader.request_quote(0, "long", 5_000 * USDC_E6, 10, 50_000_000, expires_in_ms=30_000)
        rfq_id = ack.events[0].rfq_id
        quote = await asyncio.wait_for(quoted, 20)
        assert quote.rfq_id == rfq_id and 0 < quote.funding_rate_e9 < 50_000_000
        accepted = await trader.accept(rfq_id, quote.quote_id)
        opened_event = next(e for e in accepted.events if type(e) is ev.PositionOpened)
        assert opened_event.short_agent == agent_of(ARB)

        order = await asyncio.wait_for(orders.get(), 20)  # the hedger's order for the maker's new exposure
        assert order["newClientOrderId"] == client_order_id(agent_of(ARB), 0, opened_event.seq, 0)
        assert order["side"] == "BUY" and order["symbol"] == "BTCUSDT"
        await venue.projections.runner.wait_for_seq(vh.NAME, venue.hub.last_seq)
        account = sim.accounts[venue.hedger.credentials[agent_of(ARB)]["binance"].api_key]
        assert account.positions["BTCUSDT"].amount == Decimal("0.050")  # 5 000 USDC at 100 000, bought
        assert venue.hedger.status()["hedged_usdc"] != "0"

        # The simulator goes down (its /sim fault control): after failures_max failed polls the
        # maker lets the next RFQ pass; when it is back, one good poll and it quotes again.
        async with aiohttp.ClientSession(venue.hedger.urls["binance"]) as session:
            await set_outage(session, True)
            for _ in range(demo.ARBITRAGE_FAILURES_MAX):
                await feed.refresh()
            ack = await trader.request_quote(0, "long", 5_000 * USDC_E6, 10, 50_000_000, expires_in_ms=30_000)
            assert await asyncio.wait_for(skip_to(maker.answers, ack.events[0].rfq_id), 20) is None
            assert maker.skipped["hedge_unhealthy"] >= 1
            await set_outage(session, False)
            await feed.refresh()
            ack = await trader.request_quote(0, "long", 5_000 * USDC_E6, 10, 50_000_000, expires_in_ms=30_000)
            assert await asyncio.wait_for(skip_to(maker.answers, ack.events[0].rfq_id), 20) is not None
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for client in clients:
            await client.disconnect()
        await venue.stop()


async def skip_to(answers: asyncio.Queue, rfq_id: int):
    """The maker's answer to ``rfq_id`` (earlier RFQs' answers passed over)."""
    while True:
        seen, intent = await answers.get()
        if seen == rfq_id:
            return intent


def test_a_backtest_reports_the_hedged_book(tmp_path):
    from replay.backtest import backtest
    from replay.generate import generate

    config = default_config(checkpoint_every_events=500)
    generate(tmp_path / "j", 1_500, seed=5, config=config, progress=False, jump_probability=0.05)
    r = backtest(tmp_path / "j", "agents.arbitrage:ArbitrageMaker", config, seed=3)
    assert r.fills > 0 and r.hedge_cost_e6 > 0
    assert r.pnl_e6 == r.venue_pnl_e6 + r.hedge_pnl_e6 and r.equity_e6[-1] == r.deposit_e6 + r.pnl_e6
    # The hedge is −1 × the venue book: its mark cancels the venue's price PnL (realized + unrealized)
    # up to the rounding of each amount; what is left is the venue funding and the hedge's costs.
    mark_e6 = r.hedge_pnl_e6 + r.hedge_cost_e6 - r.hedge_funding_e6
    assert abs(mark_e6) > 10_000_000 and abs(mark_e6 + r.realized_pnl_e6 + r.unrealized_pnl_e6) <= 2 * r.fills
    unhedged = backtest(tmp_path / "j", "agents.makers:InventoryMaker", config, seed=3)
    assert unhedged.hedge_pnl_e6 == 0 and unhedged.pnl_e6 == unhedged.venue_pnl_e6
