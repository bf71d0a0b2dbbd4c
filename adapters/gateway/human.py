"""Human units at the HTTP edge, converted exactly to and from the engine's integers (DESIGN §3).

| human field | engine unit | scale |
|---|---|---|
| USDC amounts (`size_usdc`, `amount_usdc`, ...) | `_e6` | 6 decimal places |
| prices (`price`, `entry_price`) | `_e8` | 8 |
| funding rates, fractions per 8h (`funding_rate`) | `_e9` | 9 |
| seconds (`expires_in`, `valid_for`) | `_ms` | 3 |
| percentages (`size_percent`) | `_bps` | 2 |

``to_units`` takes a ``Decimal`` (JSON numbers are decoded as ``Decimal``, never float), an
``int`` or a decimal string (``"12.5"``) and returns the integer in the engine unit, or raises ``Inexact`` (more decimal places
than the unit has: ``0.0000001`` USDC) or ``OutOfRange`` (beyond the field's hard bounds,
which also keeps every value far inside int64). ``from_units`` is its exact inverse, the
shortest decimal string (``100_000_000`` e6 -> ``"100"``, ``-50_000`` e6 -> ``"-0.05"``).
Both are pure; no float ever holds an amount.
"""

from __future__ import annotations

import re
from decimal import Decimal

from engine import rejections as rj
from protocol import codes
from engine import units as u

USDC_PLACES = 6
PRICE_PLACES = 8
RATE_PLACES = 9
SECONDS_PLACES = 3  # seconds -> milliseconds
PERCENT_PLACES = 2  # percent -> basis points

# A value whose magnitude reaches 10**DIGITS_MAX in engine units is out of every range; the
# check happens before any big integer is built, so ``1e999999999`` costs nothing.
DIGITS_MAX = 18
# A decimal string: optional minus, digits, optional fraction (no exponent, sign, space or "_").
_DECIMAL_STRING = re.compile(r"-?[0-9]{1,40}(\.[0-9]{1,40})?")


class ConversionError(ValueError):
    """A human value that has no exact engine value; ``code``/``detail`` as a rejection."""

    def __init__(self, code: str, message: str, detail: dict, *, fits_schema: bool = False):
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail
        self.fits_schema = fits_schema  # a rule across fields, which the schema cannot state (422)

    def rejection(self) -> rj.Rejected:
        return rj.Rejected(self.code, self.message, self.detail)


def to_units(value: Decimal | int | str, places: int, field: str, low: int, high: int) -> int:
    """``value × 10**places`` as an exact integer in ``[low, high]`` (engine units).

    Raises ``ConversionError``: INVALID_FIELD for NaN/infinity or a value with more than
    ``places`` decimal places, OUT_OF_RANGE (with the bounds in human units) beyond them.
    """
    if isinstance(value, str):
        if not _DECIMAL_STRING.fullmatch(value):
            raise ConversionError(rj.INVALID_FIELD, f"{field} must be a number or a decimal string like \"12.5\"",
                                  {"field": field, "value": value[:40]})
        value = Decimal(value)
    elif isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise ConversionError(codes.MALFORMED, f"{field} must be a number or a decimal string",
                              {"field": field, "value": repr(value)[:40]})
    elif isinstance(value, int):
        value = Decimal(value)
    if not value.is_finite():
        raise ConversionError(rj.INVALID_FIELD, f"{field} must be a finite number",
                              {"field": field, "value": str(value)})
    sign, digits, exponent = value.as_tuple()
    # Trailing zeros of the coefficient carry no value: 1.500 == 15e-1.
    end = len(digits)
    while end > 1 and digits[end - 1] == 0:
        end -= 1
    exponent += len(digits) - end
    digits = digits[:end]
    if digits == (0,):
        units = 0
    else:
        if len(digits) + exponent + places > DIGITS_MAX:
            raise _out_of_range(field, value, places, low, high)
        if exponent + places < 0:
            raise ConversionError(
                rj.INVALID_FIELD, f"{field} {value} has more than {places} decimal places",
                {"field": field, "value": str(value), "decimal_places_max": places,
                 "step": from_units(1, places)})
        units = int("".join(map(str, digits))) * 10 ** (exponent + places)
        if sign:
            units = -units
    if not low <= units <= high:
        raise _out_of_range(field, value, places, low, high)
    return units


def _out_of_range(field: str, value: Decimal, places: int, low: int, high: int) -> ConversionError:
    shown = str(value) if abs(value.adjusted()) < 40 else f"{value:.3E}"
    return ConversionError(rj.OUT_OF_RANGE, f"{field} {shown} is outside [{from_units(low, places)}, "
                           f"{from_units(high, places)}]",
                           {"field": field, "value": shown, "min": from_units(low, places),
                            "max": from_units(high, places)})


def from_units(units: int, places: int) -> str:
    """The shortest exact decimal string of ``units × 10**-places``."""
    sign = "-" if units < 0 else ""
    whole, fraction = divmod(abs(units), 10**places)
    if not fraction:
        return f"{sign}{whole}"
    return f"{sign}{whole}." + str(fraction).rjust(places, "0").rstrip("0")


# Engine-unit shorthands used by the parsers and renderers.

def usdc(units_e6: int) -> str:
    return from_units(units_e6, USDC_PLACES)


def price(units_e8: int) -> str:
    return from_units(units_e8, PRICE_PLACES)


def rate(units_e9: int) -> str:
    return from_units(units_e9, RATE_PLACES)


# Hard bounds of each kind of field at the edge, in engine units. The engine applies the
# market's narrower ranges itself (and answers with the same codes); these exist so that
# no value beyond what the engine could ever accept is turned into a giant integer.
USDC_SIZE_E6 = (-u.SIZE_E6_MAX, u.SIZE_E6_MAX)
USDC_AMOUNT_E6 = (-u.AMOUNT_E6_MAX, u.AMOUNT_E6_MAX)
RATE_E9 = (-u.RATE_E9_MAX, u.RATE_E9_MAX)
PRICE_E8 = (0, u.PRICE_E8_MAX)
LIFETIME_MS = (0, 86_400_000)  # one day; markets allow at most minutes
PERCENT_BPS = (0, u.BPS_SCALE)
LEVERAGE = (-u.LEVERAGE_MAX, u.LEVERAGE_MAX)
