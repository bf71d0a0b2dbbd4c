"""The alert rules on hand-built series: robust z-scores, staleness, lags, hedger health."""

from __future__ import annotations

import math

from adapters.dashboard import alerts as al


def test_robust_z_of_a_hand_built_window():
    window = [1.0, 2.0, 3.0, 4.0, 5.0] * 4  # median 3, MAD 1 → σ ≈ 1.4826
    assert math.isclose(al.robust_z(window, 3.0 + 1.4826 * 6), 6.0)
    assert al.robust_z(window[:19], 100.0) is None  # fewer than ZSCORE_SAMPLES_MIN points
    flat = [5.0] * 18 + [6.0, 4.0]  # MAD 0 → mean absolute deviation × 1.2533
    assert math.isclose(al.robust_z(flat, 5.0 + 0.1 * 1.2533 * 10), 10.0)
    assert al.robust_z([5.0] * 20, 5.0) is None and al.robust_z([5.0] * 20, 6.0) == math.inf


def test_a_jump_in_price_is_an_anomaly_and_a_steady_walk_is_not():
    prices = [100.0 * (1.001 if i % 2 else 0.999) ** (i % 3) for i in range(60)]
    assert al.price_alert("BTC-PERP", prices) is None
    alert = al.price_alert("BTC-PERP", prices + [prices[-1] * 1.05])
    assert alert.kind == "price_anomaly" and alert.severity == al.CRITICAL and alert.value > al.ZSCORE_CRITICAL
    assert al.price_alert("BTC-PERP", prices[:10] + [200.0]) is None  # too little history to say


def test_funding_and_flow_anomalies():
    rates = [0.005, 0.0051, 0.0049, 0.0052, 0.0048] * 5
    assert al.funding_alert("ETH-PERP", rates + [0.005]) is None
    assert al.funding_alert("ETH-PERP", rates + [0.02]).kind == "funding_anomaly"
    counts = [10.0, 12.0, 9.0, 11.0, 10.0, 8.0] * 5
    assert al.flow_alert("SOL-PERP", counts + [11.0]) is None
    surge = al.flow_alert("SOL-PERP", counts + [60.0])
    assert surge.kind == "flow_anomaly" and "SOL-PERP" in surge.message


def test_oracle_staleness_at_its_bound():
    max_ns = 30 * 10**9
    assert al.oracle_stale_alert("BTC-PERP", max_ns, max_ns) is None  # at the bound: fresh enough
    stale = al.oracle_stale_alert("BTC-PERP", max_ns + 1, max_ns)
    assert stale.kind == "oracle_stale" and stale.severity == al.WARN
    assert al.oracle_stale_alert("BTC-PERP", 6 * max_ns, max_ns).severity == al.CRITICAL
    assert al.oracle_stale_alert("BTC-PERP", None, max_ns).message == "BTC-PERP: no oracle price yet"


def test_lag_and_hedger_alerts():
    lags = {"sql": {"lag_seq": 3, "lag_s": al.PROJECTION_LAG_S_MAX + 1}, "escrow": {"lag_seq": 10},
            "big": {"lag_seq": al.PROJECTION_LAG_SEQ_MAX + 1}, "fine": {"lag_s": al.PROJECTION_LAG_S_MAX}}
    assert [(a.subject, a.kind) for a in al.lag_alerts(lags)] == [("big", "projection_lag"), ("sql", "projection_lag")]
    found = al.hedger_alerts({"binance": {"state": "down", "reason": "timeout"}, "okx": {"state": "connected"},
                              "bybit": {"state": "degraded"}})
    assert [(a.subject, a.severity) for a in found] == [("binance", al.CRITICAL), ("bybit", al.WARN)]
    assert "timeout" in found[0].message
