"""The status line's money: to the cent by integer half-even rounding."""

from venue.run import _usdc


def test_cents_round_half_even_without_floats():
    assert _usdc(33_345_000_000) == "33,345.00"
    assert _usdc(15_000) == "0.02" and _usdc(25_000) == "0.02" and _usdc(35_000) == "0.04"
    assert _usdc(-1_234_567) == "-1.23"
    assert _usdc(2**62) == "4,611,686,018,427.39"  # no float would give the last cents exactly
