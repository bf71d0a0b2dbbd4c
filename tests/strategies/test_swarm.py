"""SwarmMaker's rules on hand-built inputs: the 65% threshold on both sides of its edge, the
risk manager's veto, the emergency stop, the drawdown cap; determinism per seed."""

from __future__ import annotations

import pytest

from agents import swarm
from agents.features import MarketFeatures
from agents.swarm import QUOTE, SKIP, Opinion, SwarmMaker, consensus
from engine import events as ev
from engine.markets import default_config
from engine.views import RfqView

NOW = 1_767_254_400_000_000_000
CALM = MarketFeatures(100_000 * 10**8, 0.0, 0.0005, 0.0, 64)


def opinions(analyzer=QUOTE, risk=QUOTE, optimizer=QUOTE, execution=QUOTE, confidence=(1.0, 1.0, 1.0, 1.0),
             veto=False):
    c = confidence
    return {"market_analyzer": Opinion(analyzer, 100, c[0], "a"),
            "risk_manager": Opinion(risk, 200, c[1], "r", veto=veto),
            "strategy_optimizer": Opinion(optimizer, 300, c[2], "o"),
            "execution_agent": Opinion(execution, 0, c[3], "e", valid_for_ms=7_000)}


def test_weights_are_25_30_20_25_and_agreement_is_weight_times_confidence():
    assert swarm.WEIGHTS == {"market_analyzer": 25, "risk_manager": 30, "strategy_optimizer": 20,
                             "execution_agent": 25}
    vote = consensus(opinions(optimizer=SKIP, confidence=(1.0, 0.5, 1.0, 1.0)))
    assert vote.agreement == pytest.approx((25 + 15 + 25) / (25 + 15 + 20 + 25))
    # the rate adjustment: the quote voters' weighted mean
    assert vote.rate_adjust_e9 == round((25 * 100 + 15 * 200 + 25 * 0) / 65)
    assert vote.valid_for_ms == 7_000


def test_the_65_percent_threshold_on_both_sides_of_its_edge():
    # the execution agent (25) skips; the others quote: agreement = 75 / (75 + 25 c)
    # c = 1.62 would be exactly 65% ... with confidences in [0, 1] build it from the analyzer instead:
    # analyzer skips with confidence x: agreement = (30 + 20 + 25) / (75 + 25 x)
    edge_x = (75 / 0.65 - 75) / 25  # agreement exactly 0.65 at this confidence
    above = consensus(opinions(analyzer=SKIP, confidence=(edge_x - 0.01, 1.0, 1.0, 1.0)))
    below = consensus(opinions(analyzer=SKIP, confidence=(edge_x + 0.01, 1.0, 1.0, 1.0)))
    assert above.agreement > 0.65 > below.agreement
    assert above.act and not below.act
    at = consensus(opinions(analyzer=SKIP, confidence=(0.5, 1.0, 1.0, 1.0)), threshold=75 / 87.5)
    assert not at.act  # "above" the threshold: equal does not act


def test_the_risk_manager_vetoes_whatever_the_others_say():
    vote = consensus(opinions(risk=SKIP, veto=True, confidence=(1.0, 0.01, 1.0, 1.0)))
    assert vote.agreement > 0.65 and not vote.act and vote.vetoed_by == "risk_manager"
    o = swarm.risk_manager(0, -300, 200, 0, 0.0, inventory_rate_e9=1, drawdown_warn_bps=1_000, volatility_veto=0.02)
    assert o.veto and o.action == SKIP
    o = swarm.risk_manager(0, -100, 200, 0, 0.05, inventory_rate_e9=1, drawdown_warn_bps=1_000, volatility_veto=0.02)
    assert o.veto
    o = swarm.risk_manager(-150, -50, 200, 0, 0.0, inventory_rate_e9=1_000, drawdown_warn_bps=1_000,
                           volatility_veto=0.02)
    assert o.action == QUOTE and not o.veto and o.rate_adjust_e9 < 0  # reducing exposure: a discount


def rfq(rfq_id=1, side="long", size_e6=1_000_000_000, market=0):
    return RfqView(rfq_id, "trader", market, side, size_e6, 10, 50_000_000, 0, NOW + 30 * 10**9, 0, False, None)


def oracle(seq, price_e8, market=0, ts_ns=NOW):
    return ev.OracleUpdated(seq, ts_ns, seq, market, price_e8, price_e8 // 10_000, ts_ns, "test")


def maker(**kw) -> SwarmMaker:
    m = SwarmMaker(seed=7, **kw)
    m.on_start(default_config(), "swarm")
    return m


def warm(m: SwarmMaker, n=20, price=100_000 * 10**8):
    for i in range(n):
        m.on_event(oracle(i + 1, price + (i % 2) * 10**8), NOW)


def test_a_calm_market_is_quoted_and_every_decision_records_its_votes():
    m = maker()
    warm(m)
    intent = m.on_rfq(rfq(), 100_000 * 10**8, NOW)
    assert intent is not None and intent.valid_for_ms == 10_000
    d = m.decisions[-1]
    assert d.outcome == "quote" and d.rate_e9 == intent.funding_rate_e9 and len(d.votes) == 4
    assert {v.agent for v in d.votes} == set(swarm.WEIGHTS) and d.agreement > 0.65
    assert d.to_dict()["votes"][0]["agent"] == "market_analyzer"


def test_emergency_stop_cancels_every_live_quote_and_halts():
    m = maker(halt_ms=60_000)
    warm(m)
    for quote_id in (11, 12):
        m.on_event(ev.QuoteSubmitted(100 + quote_id, NOW, 1, quote_id, 1, "swarm", 1_000_000, 1, 0, NOW, "", []), NOW)
    m.on_event(oracle(200, 104_000 * 10**8), NOW)  # +4%: a shock
    assert m.take_cancels() == [11, 12] and m.take_cancels() == []
    assert m.decisions[-1].outcome == "emergency_stop"
    assert m.on_rfq(rfq(), 104_000 * 10**8, NOW + 59 * 10**9) is None
    assert m.decisions[-1].outcome == "halted"
    later = NOW + 61 * 10**9
    m.on_rfq(rfq(2), 104_000 * 10**8, later)
    assert m.decisions[-1].outcome != "halted" and m.decisions[-1].votes
    assert swarm.is_shock(0.0249, 0.0, shock_bps=250, shock_volatility=0.03) is False
    assert swarm.is_shock(-0.025, 0.0, shock_bps=250, shock_volatility=0.03) is True


def test_the_drawdown_cap_stops_quoting_beyond_15_percent():
    assert swarm.drawdown_bps(1_000, 850) == 1_500 and swarm.drawdown_bps(1_000, 1_100) == 0
    m = maker(capital_e6=1_000_000_000, drawdown_warn_bps=2_000)  # the risk manager's own caution out of the way
    warm(m)
    m.peak_e6 = 1_000_000_000
    m.book.free_e6 = 851_000_000  # 14.9% below the peak: still quotes
    assert m.on_rfq(rfq(1), 100_000 * 10**8, NOW) is not None
    m.book.free_e6 = 849_000_000  # 15.1%: stops
    assert m.on_rfq(rfq(2), 100_000 * 10**8, NOW) is None
    assert m.decisions[-1].outcome == "drawdown"


def test_the_analyzer_skips_a_storm_and_a_trend_against_the_maker():
    params = dict(trend_rate_e9=1, volatility_rate_e9=1, volatility_skip=0.01, samples_min=16, trend_skip=0.002)
    assert swarm.market_analyzer(CALM._replace(volatility=0.02), -1, **params).action == SKIP
    assert swarm.market_analyzer(CALM._replace(trend=0.003), -1, **params).action == SKIP  # rising, maker short
    assert swarm.market_analyzer(CALM._replace(trend=0.003), 1, **params).action == QUOTE  # rising, maker long


def test_same_seed_same_decisions():
    def run(seed):
        m = SwarmMaker(seed=seed)
        m.on_start(default_config(), "swarm")
        warm(m)
        return [m.on_rfq(rfq(i), 100_000 * 10**8, NOW) for i in range(1, 30)]

    assert run(3) == run(3)
    assert run(3) != run(4)
