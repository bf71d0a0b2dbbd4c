"""Order-book analysis: table-driven, by hand."""

import math

import pytest

from protocol import orderbook as a

BIDS = [[99.0, 1.0], [98.0, 2.0]]
ASKS = [[101.0, 1.0], [102.0, 2.0]]


def test_mid_and_spread():
    assert a.mid(BIDS, ASKS) == 100.0
    assert a.spread_bps(BIDS, ASKS) == pytest.approx(200.0)
    assert a.spread_bps([], ASKS) == math.inf and a.mid(BIDS, []) is None


@pytest.mark.parametrize("size, filled, average, worst", [
    (0.5, 0.5, 101.0, 101.0),
    (2.0, 2.0, 101.5, 102.0),
    (5.0, 3.0, (101 + 204) / 3, 102.0),
])
def test_walk(size, filled, average, worst):
    w = a.walk(ASKS, size)
    assert (w.filled, w.worst) == (filled, worst) and w.average == pytest.approx(average)


def test_walk_stops_at_the_bound():
    assert a.walk(ASKS, 3.0, bound=101.5).filled == 1.0
    assert a.walk(BIDS, 3.0, bound=98.5, side="sell").filled == 1.0


def test_depth_impact_cost():
    assert a.depth_to(ASKS, 2.0) == 1.0 and a.depth_to(ASKS, 9.0) == math.inf
    assert a.price_impact_bps(BIDS, ASKS, "buy", 2.0) == pytest.approx(50.0)
    assert a.price_impact_bps(BIDS, ASKS, "sell", 9.0) == math.inf
    assert a.hedge_cost_bps(BIDS, ASKS, "buy", 1.0, 4.0) == pytest.approx(104.0)


def test_choose_the_cheapest_finite():
    assert a.choose({"a": 10.0, "b": 5.0}) == "b"
    assert a.choose({"a": math.inf, "b": 7.0}) == "b"
    assert a.choose({"a": math.inf, "b": math.inf}) == "a"
    assert a.choose({}) is None
