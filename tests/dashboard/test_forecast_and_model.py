"""Forecasts on seeded series (a known σ is recovered, bands contain the mean) and the model's bounds."""

from __future__ import annotations

import random

from adapters.dashboard import forecast as fc
from adapters.dashboard import model as md
from engine import events as ev


def test_bucketing_carries_the_price_across_quiet_buckets():
    b = fc.VOL_BUCKET_NS
    assert fc.bucket_last([(0, 1.0), (1, 2.0), (b, 3.0), (3 * b, 4.0)]) == [2.0, 3.0, 3.0, 4.0]


def test_the_volatility_of_a_seeded_walk_is_recovered_with_a_band():
    rng = random.Random(7)
    price, points = 100.0, []
    for i in range(400):  # one update per 5 s bucket, σ = 20 bps per step
        price *= 1 + rng.gauss(0, 0.002)
        points.append((i * fc.VOL_BUCKET_NS, price))
    found = fc.volatility_forecast(points)
    assert found.what == "volatility_bps" and found.estimate and len(found.mean) == fc.VOL_HORIZON_BUCKETS
    assert 14.0 < found.mean[0] < 26.0, found.mean[0]
    assert all(lo <= m <= hi for lo, m, hi in zip(found.lower, found.mean, found.upper))
    lower, upper = fc.price_cone(price, found.mean)
    assert lower[0] < price < upper[0] and upper[-1] - lower[-1] > upper[0] - lower[0]  # the cone widens
    assert fc.volatility_forecast(points[:5]) is None  # too little data: no forecast


def test_funding_rate_forecast_and_a_constant_series():
    rng = random.Random(3)
    rates = [0.005 + rng.gauss(0, 0.0003) for _ in range(80)]
    found = fc.rate_forecast(rates)
    assert 0.0045 < found.mean[0] < 0.0055 and found.lower[0] < found.mean[0] < found.upper[0]
    assert fc.rate_forecast([0.01] * 20).mean == [0.01] * fc.RATE_HORIZON_FILLS


def test_the_model_keeps_every_series_bounded():
    model = md.Model(["BTC-PERP"])
    n = md.PRICE_POINTS_MAX + 10
    model.on_events([ev.OracleUpdated(seq=i + 1, ts_ns=i, cmd_id=i, market=0, price_e8=10**10 + i, conf_e8=1,
                                      publish_ns=i * 10**9, source="dev") for i in range(n)])
    assert len(model.prices[0]) == md.PRICE_POINTS_MAX and model.prices[0][-1][1] == 10**10 + n - 1
    assert model.last_seq == n
    model.on_events([ev.OracleUpdated(seq=n + 1, ts_ns=0, cmd_id=0, market=0, price_e8=7, conf_e8=1,
                                      publish_ns=(n - 1) * 10**9 + 5, source="dev")])  # the same second
    assert len(model.prices[0]) == md.PRICE_POINTS_MAX and model.prices[0][-1][1] == 7
    for i in range(md.FLOW_BUCKETS_MAX + 5):  # one RFQ per bucket
        model._count(0, i * md.FLOW_BUCKET_NS)
    assert len(model.flow_buckets[0]) == md.FLOW_BUCKETS_MAX
    later = (md.FLOW_BUCKETS_MAX + 20) * md.FLOW_BUCKET_NS  # quiet buckets since count as zeros
    counts = model.complete_flow_counts(0, later)
    assert len(counts) == md.FLOW_BUCKETS_MAX and counts[-1] == 0.0
