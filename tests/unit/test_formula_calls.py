"""The engine's scalar paths call the money formulas through ``engine.risk.formula_calls``:
compiled, a C call of numba's machine code of each formula (``formula_calls.pyx``);
interpreted, the formulas themselves. A differential test: for random in-range inputs,
the edges of each range included, the call the engine makes, numba's dispatcher and the
formula's plain Python (``py_func``) give the same result, bit for bit and of the same
type. Without the JIT (the suite's interpreted pass) all three are the plain function."""

from __future__ import annotations

import os
import struct
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.risk import formula_calls, formulas
from engine.units import AMOUNT_E6_MAX, BPS_SCALE, FUNDING_INTERVAL_NS, PRICE_E8_MAX, RATE_E9_MAX, SIZE_E6_MAX
from ledger import compiled

NAMES = ("pnl_long_e6", "requirement_e6", "liquidatable_side", "safe_band_e8", "funding_long_to_short_e6")


def edged(low: int, high: int):
    """Integers in ``[low, high]``, the bounds and their neighbours drawn often."""
    return st.integers(low, high) | st.sampled_from([low, low + 1, high - 1, high])


sizes = edged(1, SIZE_E6_MAX)
prices = edged(1, PRICE_E8_MAX)
margins = edged(0, SIZE_E6_MAX + AMOUNT_E6_MAX)  # what was put up, plus funding and margin added
ratios_bps = edged(1, BPS_SCALE)
rates_e9 = edged(-RATE_E9_MAX, RATE_E9_MAX)
elapsed = edged(1, 3 * FUNDING_INTERVAL_NS)


def bits(value):
    """A value as its exact bits and type: ``0.0 == -0.0`` and ``1 == 1.0``, but not here."""
    if isinstance(value, tuple):
        return tuple(bits(v) for v in value)
    if isinstance(value, float):
        return "float", struct.pack("<d", value)
    return type(value).__name__, value


def same_three_ways(name: str, *args):
    formula = getattr(formulas, name)
    direct = getattr(formula_calls, name)(*args)
    dispatched = formula(*args)
    plain = getattr(formula, "py_func", formula)(*args)  # NUMBA_DISABLE_JIT: the formula is plain already
    assert bits(direct) == bits(dispatched) == bits(plain), (name, args, direct, dispatched, plain)


def test_the_engine_calls_the_formulas_the_way_its_mode_says():
    """Compiled: every formula through its C entry point (else the test below proves nothing);
    interpreted: the formulas themselves."""
    if compiled.engine_is_compiled():
        assert formula_calls.__file__.endswith(tuple(compiled.machinery.EXTENSION_SUFFIXES))
        if os.environ.get("NUMBA_DISABLE_JIT", "0") == "0":
            assert sorted(formula_calls.ENTRY_POINTS) == sorted(NAMES)
    else:
        for name in NAMES:
            assert getattr(formula_calls, name) is getattr(formulas, name)


@settings(max_examples=400, deadline=None)
@given(size=sizes, entry=prices, price=prices)
def test_pnl_long(size, entry, price):
    same_three_ways("pnl_long_e6", size, entry, price)


@settings(max_examples=300, deadline=None)
@given(size_open=sizes, data=st.data(), entry=prices, price=prices, ratio_bps=ratios_bps)
def test_requirement(size_open, data, entry, price, ratio_bps):
    size = data.draw(edged(1, size_open) if size_open > 1 else st.just(1))
    margin_open = data.draw(edged(1, size_open) if size_open > 1 else st.just(1))
    same_three_ways("requirement_e6", margin_open, size_open, size, entry, price, ratio_bps)


@settings(max_examples=400, deadline=None)
@given(size_open=sizes, data=st.data(), margin_long=margins, margin_short=margins, entry=prices, price=prices,
       maintenance_bps=ratios_bps, near=st.booleans())
def test_liquidatable_side(size_open, data, margin_long, margin_short, entry, price, maintenance_bps, near):
    size = data.draw(edged(1, size_open) if size_open > 1 else st.just(1))
    margin_open_long = data.draw(edged(1, size_open) if size_open > 1 else st.just(1))
    margin_open_short = data.draw(edged(1, size_open) if size_open > 1 else st.just(1))
    if near:  # a price within a few ticks of the entry: the sides' equities near their margins
        price = max(1, min(PRICE_E8_MAX, entry + data.draw(st.integers(-3, 3))))
    same_three_ways("liquidatable_side", margin_long, margin_short, margin_open_long, margin_open_short, size_open,
                    size, entry, price, maintenance_bps)


@settings(max_examples=400, deadline=None)
@given(size_open=sizes, data=st.data(), margin_long=margins, margin_short=margins, entry=prices,
       maintenance_bps=ratios_bps)
def test_safe_band(size_open, data, margin_long, margin_short, entry, maintenance_bps):
    size = data.draw(edged(1, size_open) if size_open > 1 else st.just(1))
    margin_open_long = data.draw(edged(1, size_open) if size_open > 1 else st.just(1))
    margin_open_short = data.draw(edged(1, size_open) if size_open > 1 else st.just(1))
    same_three_ways("safe_band_e8", margin_long, margin_short, margin_open_long, margin_open_short, size_open, size,
                    entry, maintenance_bps)


@settings(max_examples=400, deadline=None)
@given(size=sizes, rate=rates_e9, taker_is_long=st.booleans(), elapsed_ns=elapsed, margin_long=margins,
       margin_short=margins)
def test_funding_long_to_short(size, rate, taker_is_long, elapsed_ns, margin_long, margin_short):
    same_three_ways("funding_long_to_short_e6", size, rate, taker_is_long, elapsed_ns, margin_long, margin_short)


def test_a_formula_that_raises_raises_the_same_through_the_direct_call(monkeypatch):
    """An entry whose formula raised (entry price 0: a division by zero, a bug upstream)
    reports it as unraisable and the call goes to the formula, which raises it: the engine
    fails as it would interpreted, never with a made-up result."""
    reported = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)  # numba's cfunc wrapper writes it there
    with pytest.raises(ZeroDivisionError):
        formulas.pnl_long_e6(1, 0, 1)
    with pytest.raises(ZeroDivisionError):
        formula_calls.pnl_long_e6(1, 0, 1)
    if getattr(formula_calls, "ENTRY_POINTS", None):  # compiled, with the JIT: the entry point ran first
        assert len(reported) == 1 and isinstance(reported[0].exc_value, ZeroDivisionError)


def test_an_argument_beyond_int64_is_refused_not_wrapped():
    """The direct call converts to int64 as the dispatcher types an int: beyond, it refuses
    (the dispatcher would retype as uint64; no engine value gets there: they come from int64
    columns and bounded commands)."""
    if compiled.engine_is_compiled():
        with pytest.raises(OverflowError):
            formula_calls.pnl_long_e6(2**63, 1, 1)
