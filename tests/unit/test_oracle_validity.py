"""The oracle's grades, the short TWAP, per-market thresholds and provenance bounds
(engine/oracle.py). The table's cells run as a scenario: tests/scenarios/cases/oracle_validity.scn."""

from __future__ import annotations

import msgspec
import pytest

from engine import commands as cmd
from engine import events as ev
from engine import oracle
from engine import rejections as rj
from engine.core import execute
from engine.invariants import violations
from engine.markets import EngineConfig, Market, default_config
from engine.state import State, export_state, import_state, state_hash
from engine.units import NS_PER_S, PRICE_E8_MAX

T0 = 1_767_225_600 * NS_PER_S
USD = 100_000_000


class Venue:
    def __init__(self, config: EngineConfig | None = None):
        self.state = State(config or default_config())
        self.cmd_id = 0

    def run(self, command, at_s: float):
        self.cmd_id += 1
        return execute(self.state, command, T0 + int(at_s * NS_PER_S), self.cmd_id)

    def price(self, market: int, usd: float, at_s: float, conf_usd: float = 0.0, **provenance):
        return self.run(cmd.OracleUpdate(market, int(usd * USD), int(conf_usd * USD), T0 + int(at_s * NS_PER_S),
                                         "test", **provenance), at_s)


def test_grades_come_most_severe_first():
    v = Venue()
    now = T0 + 100 * NS_PER_S
    assert oracle.validity(v.state, 0, now) == oracle.NON_POSITIVE
    v.price(0, 100_000, 0)
    v.price(0, 250_000, 1, conf_usd=10_000)  # 2.5x the TWAP, conf 4%, and (at 100 s) stale
    assert oracle.validity(v.state, 0, now) == oracle.TOO_VOLATILE
    v.price(0, 100_000, 2, conf_usd=10_000)  # TWAP 102 500: not volatile; uncertain and stale
    assert oracle.validity(v.state, 0, now) == oracle.TOO_UNCERTAIN
    v.price(0, 100_000, 3)
    assert oracle.validity(v.state, 0, now) == oracle.STALE_FOR_MARGIN
    assert oracle.validity(v.state, 0, T0 + 3 * NS_PER_S) == oracle.VALID


def test_the_twap_weights_each_price_by_the_time_it_was_the_last():
    v = Venue()
    v.price(0, 100, 0)
    assert v.state.oracle.twap_e8[0] == 100 * USD  # the first price is its own reference
    v.price(0, 130, 30)  # 100 held 30 s of a 60 s window: still 100 (it was the TWAP)
    assert v.state.oracle.twap_e8[0] == 100 * USD
    v.price(0, 130, 45)  # 130 held 15 s: 100 + 30 x 15/60
    assert v.state.oracle.twap_e8[0] == 107_50000000
    v.price(0, 70, 46)  # 130 held 1 s: 107.5 + 22.5/60, rounded half-even in 1e-8 USD
    assert v.state.oracle.twap_e8[0] == 107_50000000 + 37_500_000
    v.price(0, 70, 500)  # held beyond the window: the TWAP is the last price
    assert v.state.oracle.twap_e8[0] == 70 * USD
    assert oracle.twap_after(3, 4, 0, 1, 2) == 4  # 3.5 rounds half to even
    assert oracle.twap_after(5, 4, 0, 1, 2) == 4  # 4.5 too
    assert not violations(v.state)


def test_thresholds_are_per_market():
    tight = Market(market_id=1, symbol="TIGHT-PERP", oracle_volatility_bps_max=500, oracle_age_ns_max=5 * NS_PER_S,
                   oracle_close_age_ns_max=5 * NS_PER_S, oracle_twap_window_ns=10 * NS_PER_S)
    v = Venue(EngineConfig(markets=(Market(market_id=0, symbol="BTC-PERP"), tight)))
    for market in (0, 1):
        v.price(market, 100, 0)
        v.price(market, 106, 1)  # 6% over the TWAP: fine on BTC (2x), too volatile beyond 5%
    assert oracle.validity(v.state, 0, T0 + NS_PER_S) == oracle.VALID
    assert oracle.validity(v.state, 1, T0 + NS_PER_S) == oracle.TOO_VOLATILE
    # Close-only age: 5 s on the tight market, 150 s (the default, 5x the max age) on BTC.
    v.price(1, 106, 20)  # 106 held 19 s > the 10 s window: the TWAP is 106
    at = T0 + 26 * NS_PER_S
    assert oracle.require(v.state, 1, at, oracle.CLOSE).code == rj.ORACLE_STALE
    assert oracle.require(v.state, 0, at, oracle.CLOSE) is None
    assert oracle.require(v.state, 0, at, oracle.OPEN) is None
    assert oracle.require(v.state, 0, T0 + 32 * NS_PER_S, oracle.OPEN).code == rj.ORACLE_STALE


def test_each_refusal_says_what_would_have_worked():
    v = Venue()
    v.price(0, 100_000, 0)
    v.price(0, 250_000, 1)
    refused = oracle.require(v.state, 0, T0 + NS_PER_S, oracle.LIQUIDATE)
    d = refused.detail
    assert (refused.code, d["validity"], d["action"], d["twap_e8"]) == (rj.ORACLE_VOLATILE, "too_volatile",
                                                                         "liquidate", 100_000 * USD)
    assert (d["price_e8_min"], d["price_e8_max"]) == (50_000 * USD, 200_000 * USD)
    # The band's edges pass and one step beyond fails, exactly.
    for price_e8, ok in ((d["price_e8_max"], True), (d["price_e8_max"] + 1, False),
                         (d["price_e8_min"], True), (d["price_e8_min"] - 1, False)):
        assert oracle.too_volatile(price_e8, d["twap_e8"], d["volatility_bps_max"]) is not ok
    v.price(0, 250_000, 100)  # 250 000 held beyond the window: the TWAP, and Valid
    stale = oracle.require(v.state, 0, T0 + 140 * NS_PER_S, oracle.OPEN)
    assert stale.detail["age_ms_max"] == 30_000 and stale.detail["close_age_ms_max"] == 150_000
    assert stale.detail["accepts"] == ["valid"]


def test_configuration_bounds():
    with pytest.raises(ValueError, match="oracle_close_age_ns_max"):
        Market(market_id=0, symbol="X", oracle_close_age_ns_max=10 * NS_PER_S).validate()  # below the max age
    with pytest.raises(ValueError, match="oracle_twap_window_ns"):
        Market(market_id=0, symbol="X", oracle_twap_window_ns=2 * 3_600 * NS_PER_S).validate()
    with pytest.raises(ValueError, match="oracle_volatility_bps_max"):
        Market(market_id=0, symbol="X", oracle_volatility_bps_max=0).validate()


def test_the_twap_is_state_hashed_snapshotted_and_checked():
    v = Venue()
    v.price(0, 100, 0)
    v.price(0, 120, 10)
    restored = import_state(v.state.config, msgspec.msgpack.decode(msgspec.msgpack.encode(export_state(v.state))))
    assert restored.oracle.twap_e8 == v.state.oracle.twap_e8 and state_hash(restored) == state_hash(v.state)
    before = state_hash(v.state)
    v.state.oracle.twap_e8[0] += 1
    assert state_hash(v.state) != before
    v.state.oracle.twap_e8[0] = 0
    assert any("TWAP" in found for found in violations(v.state))
    old = export_state(v.state) | {"format": 1}
    with pytest.raises(ValueError, match="format 1"):
        import_state(v.state.config, old)


def test_provenance_is_journaled_and_bounded():
    v = Venue()
    done = v.price(0, 100, 0, feed_id="e62d" * 16, sources=["binance", "okx"], spread_bps=12, ema_price_e8=99 * USD)
    assert isinstance(done[0], ev.OracleUpdated)
    assert (done[0].feed_id, done[0].sources, done[0].spread_bps, done[0].ema_price_e8) == (
        "e62d" * 16, ["binance", "okx"], 12, 99 * USD)
    for at_s, provenance, field in (
            (1, {"feed_id": "f" * 129}, "feed_id"), (2, {"sources": ["x"] * 17}, "sources"),
            (3, {"sources": [""]}, "sources[]"), (4, {"sources": ["x" * 65]}, "sources[]"),
            (5, {"spread_bps": 10_001}, "spread_bps"), (6, {"ema_price_e8": PRICE_E8_MAX + 1}, "ema_price_e8")):
        refused = v.price(0, 100, at_s, **provenance)
        assert isinstance(refused, rj.Rejected) and refused.code == rj.OUT_OF_RANGE
        assert refused.detail["field"] == field
    refused = v.run(cmd.OracleUpdate(0, USD, 0, T0 + 9 * NS_PER_S, "s" * 161), 9)
    assert refused.code == rj.OUT_OF_RANGE and refused.detail["field"] == "source"
