"""``formulas.safe_band_e8``: no price strictly inside a position's band makes a side
liquidatable — over the whole input range, collateral far above size included, and at
the band's very edges, where float and rounding error would show first."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.risk import formulas
from engine.risk.formulas import SIDE_NONE
from engine.units import AMOUNT_E6_MAX, PRICE_E8_MAX, SIZE_E6_MAX

sizes = st.integers(1, SIZE_E6_MAX) | st.sampled_from([1, 10_000_000, 1_000_000_000, SIZE_E6_MAX])
prices = st.integers(1, PRICE_E8_MAX) | st.sampled_from([1, 4 * 10**11, 10**13, PRICE_E8_MAX])
amounts = st.integers(0, AMOUNT_E6_MAX) | st.sampled_from([0, 1, 10_000_000])


@st.composite
def position(draw):
    size_open = draw(sizes)
    size = draw(st.integers(1, size_open))
    def margin_open():
        return draw(st.sampled_from([1, size_open, 2 * size_open]) | st.integers(1, 3 * size_open) | amounts.map(
            lambda a: max(a, 1)))
    mo_long, mo_short = margin_open(), margin_open()
    def margin(mo):
        return draw(st.sampled_from([0, mo, mo * size // size_open]) | st.integers(0, 3 * mo) | amounts)
    return (margin(mo_long), margin(mo_short), mo_long, mo_short, size_open, size, draw(prices),
            draw(st.integers(1, 10_000) | st.just(5_000)))


@settings(max_examples=3_000, deadline=None)
@given(p=position(), data=st.data())
def test_no_price_inside_the_band_is_liquidatable(p, data):
    low, high = formulas.safe_band_e8(*p)
    first = 1 if low < 1 else math.floor(low) + 1
    last = PRICE_E8_MAX if high > PRICE_E8_MAX else math.ceil(high) - 1
    if first > last:
        return
    for price_e8 in {first, last, data.draw(st.integers(first, last))}:
        m_long, m_short, mo_long, mo_short, size_open, size, entry, maintenance_bps = p
        side, _ = formulas.liquidatable_side(m_long, m_short, mo_long, mo_short, size_open, size, entry, price_e8,
                                             maintenance_bps)
        assert side == SIDE_NONE, (p, price_e8, low, high)


def test_the_band_of_the_worked_example_is_its_liquidation_prices():
    """10x long of 100 USDC at 100 000 against 100 USDC of collateral: liquidatable below
    94 736.84 and (the short) above 133 333.33; the band is narrower by about a micro-USDC
    of PnL (1e-8 of the price here)."""
    low, high = formulas.safe_band_e8(10_000_000, 100_000_000, 10_000_000, 100_000_000, 100_000_000, 100_000_000,
                                      100_000 * 10**8, 5_000)
    assert 0 < low / 1e8 - 94_736.842105 < 0.01
    assert 0 < 133_333.333333 - high / 1e8 < 0.01
