"""The compiled engine's C integer arithmetic (engine/units.pxd, oracle.pxd, risk/bands.pxd)
gives what the .py's Python-int arithmetic gives, bit for bit, over every argument the
engine can pass (the bounds of engine/units.py) and beyond: a differential test against
the plain Python of the same source (``engine/units.py`` loaded as a fresh module, never
compiled), and against the formulas written out on Python ints. In the interpreted pass
both sides are Python, and the test checks the formulas against themselves."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import oracle, units
from engine.markets import default_config
from engine.risk import bands
from engine.state import State
from engine.units import BPS_SCALE, PRICE_E8_MAX, TWAP_WINDOW_NS_MAX, TWAP_WINDOW_NS_MIN, VOLATILITY_BPS_MAX

ROOT = Path(__file__).resolve().parents[2]


def plain_units():
    """engine/units.py as plain Python (the compiled module shadows it on import)."""
    spec = importlib.util.spec_from_file_location("plain_units", ROOT / "engine" / "units.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PLAIN = plain_units()


def edged(low: int, high: int):
    """Integers in ``[low, high]``, the bounds and their neighbours drawn often."""
    return st.integers(low, high) | st.sampled_from([low, low + 1, high - 1, high])


prices = edged(1, PRICE_E8_MAX)
windows = edged(TWAP_WINDOW_NS_MIN, TWAP_WINDOW_NS_MAX)
# Beyond what any caller passes (the largest product, price x window, is below 2**92).
numerators = edged(-2**100, 2**100) | st.integers(-1_000, 1_000)
denominators = edged(1, 2**62) | st.integers(1, 20)


def test_the_module_under_test_is_the_plain_source():
    assert not hasattr(PLAIN, "__pyx_capi__")


@settings(max_examples=5_000, deadline=None)
@given(numerators, denominators)
def test_div_half_even_and_div_ceil_are_the_python_definitions(numerator, denominator):
    expected = PLAIN.div_half_even(numerator, denominator)
    got = units.div_half_even(numerator, denominator)
    assert type(got) is int and got == expected
    assert type(units.div_ceil(numerator, denominator)) is int
    assert units.div_ceil(numerator, denominator) == PLAIN.div_ceil(numerator, denominator)


@pytest.mark.parametrize("numerator, denominator, quotient", [
    (5, 2, 2), (7, 2, 4), (-5, 2, -2), (-7, 2, -4), (1, 3, 0), (2, 3, 1), (-2, 3, -1), (0, 7, 0),
    (2**100 + 1, 2, 2**99), (2**100 + 3, 2, 2**99 + 2), (-(2**100) - 1, 2, -(2**99))])
def test_div_half_even_rounds_half_to_even(numerator, denominator, quotient):
    assert units.div_half_even(numerator, denominator) == quotient


def test_a_zero_denominator_raises_as_in_python():
    with pytest.raises(ZeroDivisionError):
        units.div_half_even(1, 0)
    with pytest.raises(ZeroDivisionError):
        units.div_ceil(1, 0)


@settings(max_examples=5_000, deadline=None)
@given(prices, prices, edged(1, VOLATILITY_BPS_MAX))
def test_too_volatile_is_the_exact_comparison(price_e8, twap_e8, volatility_bps_max):
    low, high = min(price_e8, twap_e8), max(price_e8, twap_e8)
    assert oracle.too_volatile(price_e8, twap_e8, volatility_bps_max) is \
        (high * BPS_SCALE > low * (BPS_SCALE + volatility_bps_max))


@settings(max_examples=5_000, deadline=None)
@given(prices, prices, st.integers(0, 10**19), edged(1, 2 * TWAP_WINDOW_NS_MAX) | st.integers(1, 10**25),
       windows)
def test_twap_after_is_the_formula_on_python_ints(twap_e8, last_price_e8, last_publish_ns, gap_ns, window_ns):
    """The publish times are a command's, unbounded: only the time held (<= the window)
    is computed in C."""
    publish_ns = last_publish_ns + gap_ns
    held_ns = min(gap_ns, window_ns)
    expected = PLAIN.div_half_even(twap_e8 * (window_ns - held_ns) + last_price_e8 * held_ns, window_ns)
    got = oracle.twap_after(twap_e8, last_price_e8, last_publish_ns, publish_ns, window_ns)
    assert type(got) is int and got == expected
    assert min(twap_e8, last_price_e8) <= got <= max(twap_e8, last_price_e8)


def band_ends():
    """What a band's end is: ±inf, or a float near a price (formulas.safe_band_e8)."""
    near = st.integers(-PRICE_E8_MAX, 2 * PRICE_E8_MAX).flatmap(
        lambda p: st.sampled_from([float(p), math.nextafter(float(p), math.inf), math.nextafter(float(p), -math.inf)]))
    return st.sampled_from([-math.inf, math.inf]) | near | st.floats(-1e17, 1e17)


@settings(max_examples=5_000, deadline=None)
@given(band_ends(), band_ends(), prices)
def test_inside_the_band_is_pythons_float_int_comparison(low, high, price_e8):
    state = State(default_config())
    state.safe_low_e8[0], state.safe_high_e8[0] = low, high
    assert bands.inside(state, 0, price_e8) is (low < price_e8 < high)


def test_a_price_converts_to_a_float_exactly():
    assert PRICE_E8_MAX < 2**53 and int(float(PRICE_E8_MAX)) == PRICE_E8_MAX
