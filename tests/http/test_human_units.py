"""Human units <-> engine integers: exact both ways, and what does not convert is refused."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.gateway import human as h

PLACES = [h.USDC_PLACES, h.PRICE_PLACES, h.RATE_PLACES, h.SECONDS_PLACES, h.PERCENT_PLACES]
BOUND = 10**18 - 1


class Holder(msgspec.Struct):
    x: Decimal


@given(st.integers(-BOUND, BOUND), st.sampled_from(PLACES))
def test_round_trip_through_json(units, places):
    text = h.from_units(units, places)
    # As a JSON number (what clients send) and as a JSON string: the same integer back.
    as_number = msgspec.json.decode(b'{"x": ' + text.encode() + b"}", type=Holder).x
    as_string = msgspec.json.decode(b'{"x": "' + text.encode() + b'"}', type=Holder).x
    assert h.to_units(as_number, places, "x", -BOUND, BOUND) == units
    assert h.to_units(as_string, places, "x", -BOUND, BOUND) == units
    assert Decimal(text) == Decimal(units).scaleb(-places)  # the string is the exact value
    assert not text.endswith(".") and (text == "0" or "." not in text or not text.endswith("0"))


@given(st.integers(-10**12, 10**12), st.integers(1, 9), st.integers(1, 30), st.sampled_from(PLACES))
def test_more_decimal_places_than_the_unit_are_refused(units, extra_digit, extra_places, places):
    # units × 10^-places plus a nonzero digit further right: no exact integer.
    # Built as text: Decimal arithmetic would round to its context's 28 digits.
    whole, fraction = divmod(abs(units), 10**places)
    digits = str(fraction).rjust(places, "0") + "0" * (extra_places - 1) + str(extra_digit)
    value = Decimal(f"{'-' if units < 0 else ''}{whole}.{digits}")
    with pytest.raises(h.ConversionError) as caught:
        h.to_units(value, places, "amount", -BOUND, BOUND)
    assert caught.value.code == "INVALID_FIELD" and caught.value.detail["decimal_places_max"] == places


@given(st.integers(1, 10**6), st.integers(0, 40), st.sampled_from(PLACES))
def test_trailing_zeros_and_exponents_are_exact(units, zeros, places):
    value = Decimal(str(units) + "0" * zeros + "E-" + str(zeros + places))
    assert h.to_units(value, places, "x", -BOUND, BOUND) == units


@pytest.mark.parametrize("text", ["1e19", "1e999999999", "-1e999999999", "123456789012345678901234567890"])
def test_huge_values_are_out_of_range_without_big_integers(text):
    with pytest.raises(h.ConversionError) as caught:
        h.to_units(Decimal(text), 6, "size_usdc", -BOUND, BOUND)
    assert caught.value.code == "OUT_OF_RANGE" and caught.value.detail["field"] == "size_usdc"


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("-Infinity"), Decimal("sNaN"), "NaN", "1e5", " 1", "+1",
                                   "1_000", ".5", "5.", ""])
def test_not_numbers(value):
    with pytest.raises(h.ConversionError) as caught:
        h.to_units(value, 6, "x", -BOUND, BOUND)
    assert caught.value.code == "INVALID_FIELD"


@pytest.mark.parametrize("value", [True, 1.5, [1], {"n": 1}, None])
def test_not_json_numbers_or_strings(value):
    with pytest.raises(h.ConversionError) as caught:
        h.to_units(value, 6, "x", -BOUND, BOUND)
    assert caught.value.code == "MALFORMED"


def test_decimal_strings_are_exact():
    assert h.to_units("12.5", 6, "x", -BOUND, BOUND) == 12_500_000
    assert h.to_units("-0.000001", 6, "x", -BOUND, BOUND) == -1


def test_examples_of_design_section_3():
    assert h.to_units(Decimal("100"), 6, "x", 0, BOUND) == 100_000_000
    assert h.to_units(Decimal("65000.5"), 8, "x", 0, BOUND) == 6_500_050_000_000
    assert h.to_units(Decimal("0.005"), 9, "x", -BOUND, BOUND) == 5_000_000
    assert h.to_units(Decimal("-0"), 6, "x", 0, BOUND) == 0
    assert (h.usdc(-50_000), h.price(6_500_050_000_000), h.rate(5_000_000)) == ("-0.05", "65000.5", "0.005")
    with pytest.raises(h.ConversionError):
        h.to_units(Decimal("0.0000001"), 6, "amount_usdc", 0, BOUND)
