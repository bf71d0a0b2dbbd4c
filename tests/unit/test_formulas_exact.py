"""The PnL and the liquidation predicate are exact integers (issue 11, defect 4): checked
against Python's unbounded integers, compiled and as the plain-Python twin, right at ties
and at the maintenance threshold. (That the escrow program agrees is
``tests/escrow/test_liquidation_agreement.py``.)"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.risk import formulas
from engine.units import BPS_SCALE, PNL_E6_MAX, PRICE_E8_MAX, SIZE_E6_MAX

sizes = st.integers(1, SIZE_E6_MAX) | st.sampled_from([1, SIZE_E6_MAX])
prices = st.integers(1, PRICE_E8_MAX) | st.sampled_from([1, 2, PRICE_E8_MAX - 1, PRICE_E8_MAX])


def exact_pnl(size_e6: int, entry_e8: int, price_e8: int) -> int:
    """escrow.c ``pnl_at``: the magnitude rounded half to even, clamped, then the sign."""
    q, r = divmod(size_e6 * abs(price_e8 - entry_e8), entry_e8)
    if 2 * r > entry_e8 or (2 * r == entry_e8 and q % 2 == 1):
        q += 1
    q = min(q, PNL_E6_MAX)
    return -q if price_e8 < entry_e8 else q


def exact_below(equity, margin_open, size_open, size, entry, price, maintenance_bps) -> bool:
    """escrow.c ``below_maintenance``."""
    return equity * size_open * BPS_SCALE * entry < margin_open * maintenance_bps * size * price


def both(function, *args):
    compiled, plain = function(*args), getattr(function, "py_func", function)(*args)  # NUMBA_DISABLE_JIT: no py_func
    assert compiled == plain, f"{function.__name__}{args}: compiled {compiled}, twin {plain}"
    return compiled


@settings(max_examples=500, deadline=None)
@given(size=sizes, entry=prices, price=prices)
def test_pnl_is_pnl_at(size, entry, price):
    assert both(formulas.pnl_long_e6, size, entry, price) == exact_pnl(size, entry, price)


@settings(max_examples=300, deadline=None)
@given(entry_half=st.integers(1, 5 * 10**11), k=st.integers(0, 9), up=st.booleans(),
       shift=st.sampled_from([-1, 0, 1]))
def test_pnl_at_exact_ties(entry_half, k, up, shift):
    """``size × |P − entry| = (k + ½) × entry`` (± 1) with ``|P − entry| = 1``: the half-even
    tie, and either side of it."""
    entry = 2 * entry_half
    size = k * entry + entry_half + shift
    price = entry + 1 if up else entry - 1
    if 1 <= size <= SIZE_E6_MAX and price >= 1:
        assert both(formulas.pnl_long_e6, size, entry, price) == exact_pnl(size, entry, price)


@settings(max_examples=500, deadline=None)
@given(size_open=sizes, data=st.data(), entry=prices, price=prices, maintenance_bps=st.integers(1, BPS_SCALE),
       delta=st.integers(-3, 3))
def test_below_maintenance_is_the_exact_inequality(size_open, data, entry, price, maintenance_bps, delta):
    size = data.draw(st.integers(1, size_open))
    margin_open = data.draw(st.integers(1, size_open))
    # The equity at the threshold (the requirement, floored) and a few micro-USDC around it.
    equity = margin_open * maintenance_bps * size * price // (size_open * BPS_SCALE * entry) + delta
    equity = max(-PNL_E6_MAX, min(2 * PNL_E6_MAX, equity))
    got = both(formulas.below_maintenance, equity, margin_open, size_open, size, entry, price, maintenance_bps)
    assert got == exact_below(equity, margin_open, size_open, size, entry, price, maintenance_bps)


@settings(max_examples=200, deadline=None)
@given(scale=st.integers(1, 10**9), margin_open_x=st.integers(1, 10**6), maintenance_bps=st.integers(1, BPS_SCALE),
       entry=prices, delta=st.integers(-1, 1))
def test_below_maintenance_at_equality(scale, margin_open_x, maintenance_bps, entry, delta):
    """Both sides equal (not below: the inequality is strict), or one micro-USDC apart."""
    size = size_open = BPS_SCALE * scale
    margin_open = BPS_SCALE * margin_open_x
    equity = margin_open_x * maintenance_bps  # = margin_open × bps × size / (size_open × 10 000), exactly
    got = both(formulas.below_maintenance, equity + delta, margin_open, size_open, size, entry, entry, maintenance_bps)
    assert got == exact_below(equity + delta, margin_open, size_open, size, entry, entry, maintenance_bps)


def test_liquidatable_side_uses_the_exact_predicate():
    """A long exactly at maintenance is safe; one micro-USDC less is liquidatable."""
    size, entry = 100_000_000, 100_000 * 10**8  # 100 USDC at 100 000, 10x: maintenance 5 USDC at entry
    for margin, side in ((5_000_000, formulas.SIDE_NONE), (4_999_999, formulas.SIDE_LONG)):
        got = both(formulas.liquidatable_side, margin, size, 10_000_000, size, size, size, entry, entry, 5_000)
        assert got == (side, 0)


@settings(max_examples=500, deadline=None)
@given(size_open=sizes, data=st.data(), entry=prices, maintenance_bps=st.integers(1, BPS_SCALE),
       near=st.booleans(), side=st.sampled_from([1, 2]), delta=st.integers(-2, 2))
def test_the_fast_path_is_the_definition(size_open, data, entry, maintenance_bps, near, side, delta):
    """``liquidatable_side``'s float64 fast path returns what ``liquidatable_side_exact`` does,
    for any position and for prices at a side's threshold."""
    size = data.draw(st.integers(1, size_open))
    margin_long, margin_short = data.draw(st.integers(0, size_open)), data.draw(st.integers(0, size_open))
    margin_open_long, margin_open_short = data.draw(st.integers(1, size_open)), data.draw(st.integers(1, size_open))
    price = data.draw(prices)
    if near:  # the price where the side's equity line meets its maintenance line, ± a few units
        k = margin_open_long * maintenance_bps if side == 1 else margin_open_short * maintenance_bps
        if side == 1 and k < size_open * BPS_SCALE:
            price = entry * (size - margin_long) * size_open * BPS_SCALE // (size * (size_open * BPS_SCALE - k))
        elif side == 2:
            price = entry * (size + margin_short) * size_open * BPS_SCALE // (size * (size_open * BPS_SCALE + k))
        price = max(1, min(PRICE_E8_MAX, price + delta))
    args = (margin_long, margin_short, margin_open_long, margin_open_short, size_open, size, entry, price,
            maintenance_bps)
    assert both(formulas.liquidatable_side, *args) == both(formulas.liquidatable_side_exact, *args)
