"""The arbitrage maker's rate from a known funding rate and book; the dynamic maker's rate from
the market's balance; the risk view by hand; the reducers; determinism per seed."""

from __future__ import annotations

import pytest

from agents import arbitrage as arb
from agents.dynamic import DynamicPricingMaker, confidence_of, dynamic_rate
from agents.features import MarketFeatures
from agents.risk import AccountBook, OpenInterest
from engine import events as ev
from engine.markets import default_config
from engine.units import NS_PER_HOUR
from engine.views import RfqView
from protocol.risk import Holding, risk_view

NOW = 1_767_254_400_000_000_000
P = 100_000 * 10**8  # 100 000 USD
BIDS = [[99_995.0, 0.5], [99_990.0, 1.0], [99_980.0, 5.0]]
ASKS = [[100_005.0, 0.5], [100_010.0, 1.0], [100_020.0, 5.0]]


def rfq(side="long", size_e6=100_000_000_000, max_rate=50_000_000, duration_ns=0, market=0, rfq_id=1):
    return RfqView(rfq_id, "trader", market, side, size_e6, 10, max_rate, duration_ns, NOW + 30 * 10**9, 0, False,
                   None)


def test_funding_rate_scaled_to_the_venues_8h():
    assert arb.scale_to_8h_e9(0.0001) == 100_000
    assert arb.scale_to_8h_e9(0.0001, "8h") == 100_000
    assert arb.scale_to_8h_e9(0.0001, "4h") == 200_000
    assert arb.scale_to_8h_e9(-0.00005, "1h") == -400_000


def test_arbitrage_rate_from_a_known_funding_rate_and_book():
    # 1 BTC of a long RFQ: the maker hedges by buying 1 BTC: 0.5 @ 100 005 + 0.5 @ 100 010 = 100 007.5 average
    cost = arb.hedge_cost_bps(BIDS, ASKS, "buy", 1.0, 4.0)
    assert cost == pytest.approx(0.5 + 0.25 + 4.0)  # half spread 0.5 bp + impact 2.5/100000 + fee 4 bp
    rate = arb.arbitrage_rate_e9(100_000, -1, cost, 24 * NS_PER_HOUR, 50_000)
    # funding leg +0.01% (the hedge is long and pays), cost 2 × 4.75 bp over three 8h intervals, edge 0.005%
    assert rate == round(100_000 + 2 * 4.75 * 100_000 / 3 + 50_000)
    # a short RFQ: the hedge is short and receives the CEX funding
    assert arb.arbitrage_rate_e9(100_000, 1, cost, 24 * NS_PER_HOUR, 50_000) == round(-100_000 + 2 * 4.75 * 100_000 / 3
                                                                                      + 50_000)
    # a 1h RFQ amortizes the round trip over 1/8 of an interval
    assert arb.arbitrage_rate_e9(0, -1, 1.0, NS_PER_HOUR, 0) == 2 * 100_000 * 8

    class Feed:
        def funding_rate_e9(self, market, now_ns):
            return 100_000

        def book(self, market, price_e8, now_ns):
            return BIDS, ASKS

        def healthy(self, market, now_ns):
            return market != 1

    m = arb.ArbitrageMaker(seed=1, feed=Feed(), fee_bps=4.0, edge_e9=50_000, holding_hours=24, jitter_e9=0,
                            risk_limit_e6=10**13)
    m.on_start(default_config(), "arb")
    intent = m.on_rfq(rfq(size_e6=100_000_000_000), P, NOW)  # 100 000 USDC at 100 000 = 1 BTC
    assert intent.funding_rate_e9 == rate and intent.collateral_e6 == 20_000_000_000
    assert m.on_rfq(rfq(market=1), P, NOW) is None and m.skipped == {"hedge_unhealthy": 1}
    assert m.on_rfq(rfq(size_e6=700_000_000_000), P, NOW) is None  # 7 BTC: deeper than the book (6.5)
    assert m.skipped["book_too_thin"] == 1


def test_recorded_funding_series(tmp_path):
    path = tmp_path / "funding.csv"
    path.write_text("ts_ns,market,funding_rate_e9\n100,0,50000\n200,0,-30000\n")
    feed = arb.RecordedFeed(arb.load_funding_series(path), rate_e9=7)
    assert [feed.funding_rate_e9(0, t) for t in (50, 100, 199, 200, 10**19)] == [50_000, 50_000, 50_000, -30_000,
                                                                                  -30_000]
    assert feed.funding_rate_e9(2, 0) == 7  # no series for that market: the constant
    m = arb.ArbitrageMaker(seed=0, funding_csv=str(path))
    assert m.feed.funding_rate_e9(0, 150) == 50_000


def test_ccxt_feed_health():
    now = [1000.0]

    class Client:
        fail = False

        async def fetch_funding_rate(self, symbol):
            if self.fail:
                raise ConnectionError("down")
            return {"fundingRate": 0.0001, "interval": None}

        async def fetch_order_book(self, symbol, limit):
            return {"bids": BIDS, "asks": ASKS}

    import asyncio

    client = Client()
    feed = arb.CcxtFeed(client, {0: "BTC/USDT:USDT"}, failures_max=2, stale_s=30, clock=lambda: now[0])
    assert not feed.healthy(0, 0)
    asyncio.run(feed.refresh())
    assert feed.healthy(0, 0) and feed.funding_rate_e9(0, 0) == 100_000
    client.fail = True
    asyncio.run(feed.refresh())
    assert feed.healthy(0, 0)
    asyncio.run(feed.refresh())
    assert not feed.healthy(0, 0)  # two failures in a row
    client.fail = False
    asyncio.run(feed.refresh())
    now[0] += 31
    assert not feed.healthy(0, 0)  # stale


def test_dynamic_rate_from_balance_volatility_and_confidence():
    f = MarketFeatures(P, 0.0, 0.004, 0.0, 64)
    params = dict(base_rate_e9=800_000, balance_rate_e9=3_000_000, volatility_rate_e9=1_000_000,
                  volatility_ref=0.002, uncertainty_rate_e9=2_000_000)
    crowded = dynamic_rate("long", 0.5, f, 0.75, **params)
    assert crowded == (800_000 + 1_500_000 + 2_000_000 + 500_000, 0.75, 1_500_000, 2_000_000, 500_000)
    rebalancing = dynamic_rate("short", 0.5, f, 0.75, **params)
    assert rebalancing.rate_e9 == 800_000 - 1_500_000 + 2_000_000 + 500_000
    assert confidence_of(8, 50, 100.0, samples_min=16, oi_ref_e6=100, conf_bps_max=200.0) == pytest.approx(
        0.5 * 0.75 * 0.5)


def opened(seq, position_id, taker_side, size_e6, long_agent="t", short_agent="m", margin_long=10, margin_short=20):
    return ev.PositionOpened(seq, NOW, seq, position_id, 1, 1, 0, long_agent, short_agent, taker_side, size_e6, P, 0,
                             NOW, 1_000_000, margin_long, margin_short, 0, 0, "perpetual", 0, "", False, [], "",
                             [ev.Transfer(ev.HELD, long_agent, ev.MARGIN_LONG, position_id, margin_long, "margin"),
                              ev.Transfer(ev.HELD, short_agent, ev.MARGIN_SHORT, position_id, margin_short,
                                          "margin")])


def closed(seq, position_id, closed_e6, remaining_e6):
    return ev.PositionClosed(seq, NOW, seq, position_id, "t", "close", 10_000, P, 0, NOW, closed_e6, remaining_e6, 0,
                             0, 0, 0, "", [])


def test_open_interest_by_taker_side():
    oi = OpenInterest()
    oi.apply(opened(1, 1, "long", 300))
    oi.apply(opened(2, 2, "short", 100))
    assert oi.imbalance(0) == pytest.approx(0.5) and oi.total_e6(0) == 400
    oi.apply(closed(3, 1, 200, 100))
    assert oi.imbalance(0) == 0.0
    oi.apply(closed(4, 2, 100, 0))
    assert oi.long_e6[0] == 100 and oi.short_e6[0] == 0 and 2 not in oi.positions


def test_account_book_follows_transfers_and_funding():
    book = AccountBook("m", capital_e6=1_000)
    book.apply(ev.QuoteSubmitted(1, NOW, 1, 9, 1, "m", 1, 20, 0, NOW, "", [ev.Transfer(ev.FREE, "m", ev.HELD, "m", 20,
                                                                                     "hold")]))
    assert (book.free_e6, book.held_e6) == (980, 20)
    book.apply(opened(2, 5, "long", 1_000))
    assert book.held_e6 == 0 and book.positions[5][5] == 20 and book.exposure_e6(0) == -1_000
    book.apply(ev.FundingSettled(3, NOW, 3, NOW, [5], [3], 0))
    assert book.positions[5][5] == 23 and book.funding_e6 == 3
    assert book.equity_e6({0: P}) == 980 + 23
    assert book.equity_e6({0: P + P // 10}) == 980 + 23 - 100  # short 1 000 USDC, price +10%


def test_risk_view_by_hand():
    config = default_config()
    # long 1 000 USDC at 100 000 with 100 margin (10x): liquidation price 100 000 × 900 / (1000 × 0.95)
    h = Holding(1, 0, 1, 1_000_000_000, 1_000_000_000, P, 100_000_000, 100_000_000)
    view = risk_view("a", 500_000_000, 0, [h], {0: P}, config)
    assert view.equity_e6 == 600_000_000 and view.gross_exposure_e6 == 1_000_000_000
    assert view.markets[0].net_exposure_e6 == 1_000_000_000
    assert view.positions[0].liquidation_price_e8 == round(P * 900 / 950)
    assert view.liquidation_distance_bps == round((1 - 900 / 950) * 10_000)  # 526 bps
    assert view.margin_usage_bps == round(100 * 10_000 / 600)
    assert view.maintenance_e6 == 50_000_000 and view.maintenance_usage_bps == round(50 * 10_000 / 600)
    assert view.leverage_bps == round(1000 * 10_000 / 600)
    assert 0 <= view.score <= 100 and view.level in ("low", "medium", "high", "critical")
    short = risk_view("b", 0, 0, [h._replace(sign=-1, margin_e6=1_000_000_000, margin_open_e6=1_000_000_000)],
                      {0: P}, config)
    assert short.net_exposure_e6 == -1_000_000_000 and short.liquidation_distance_bps > 0
    assert risk_view("c", 5, 0, [], {}, config).score == 0


def test_dynamic_maker_is_deterministic_per_seed():
    def run(seed):
        m = DynamicPricingMaker(seed=seed)
        m.on_start(default_config(), "dyn")
        for i in range(20):
            m.on_event(ev.OracleUpdated(i + 1, NOW, i + 1, 0, P + i * 10**8, P // 10_000, NOW, "t"), NOW)
        m.on_event(opened(30, 1, "long", 200_000_000_000), NOW)
        return [m.on_rfq(rfq(side="long" if i % 2 else "short", rfq_id=i), P, NOW) for i in range(20)]

    assert run(1) == run(1) and run(1) != run(2)
