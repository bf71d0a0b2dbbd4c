"""The synthetic oracle: deterministic for a seed, within the engine's price bounds, and
jumpy enough to liquidate."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.oracle.synthetic import SyntheticOracle
from engine import units as u

SYMBOLS = ["BTC-PERP", "ETH-PERP", "SOL-PERP"]


def oracle(seed: int, **kw) -> SyntheticOracle:
    params = {"step_bps": 8.0, "jump_probability": 0.01, "jump_bps": 600.0, "conf_bps": 5.0,
              "start_prices": {"BTC-PERP": 65_000.0, "ETH-PERP": 3_200.0}, **kw}
    return SyntheticOracle(SYMBOLS, seed=seed, **params)


def walk(o: SyntheticOracle, steps: int) -> list[list[int]]:
    return [[update.price_e8 for update in o.step_updates(i)] for i in range(steps)]


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32))
def test_same_seed_same_walk_within_bounds(seed):
    a, b = walk(oracle(seed), 200), walk(oracle(seed), 200)
    assert a == b
    assert all(1 <= p <= u.PRICE_E8_MAX for step in a for p in step)


def test_starts_near_the_configured_prices_and_jumps():
    o = oracle(3, jump_probability=0.05)
    first = o.step_updates(0)
    assert abs(first[0].price_e8 / (65_000 * u.PRICE_SCALE_E8) - 1) < 0.01
    assert abs(first[2].price_e8 / (100 * u.PRICE_SCALE_E8) - 1) < 0.01  # unlisted: 100 USD
    prices = walk(o, 2_000)
    moves = [abs(b[0] / a[0] - 1) for a, b in zip(prices, prices[1:])]
    assert max(moves) > 0.05  # a jump of ~6% happened
    assert all(update.conf_e8 < update.price_e8 // 100 for update in o.step_updates(1))
