"""Units, scales and the hard bounds on every input (DESIGN §3).

Every amount is an integer with its unit in its name:
``_e6`` USDC micro-units, ``_e8`` USD per base unit (Pyth expo -8), ``_e9`` funding rate
per 8h interval, ``_bps`` basis points, ``_ns`` nanoseconds since the Unix epoch.

The bounds below are chosen so that no integer computation in the engine can leave int64,
and so that the float64 intermediates (PnL, funding) stay exact to well under one micro-USDC
at the scales a venue sees. Inputs beyond them are rejected with the range, never wrapped.
"""

from __future__ import annotations

USDC_E6 = 1_000_000
PRICE_SCALE_E8 = 100_000_000
RATE_SCALE_E9 = 1_000_000_000
BPS_SCALE = 10_000

NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000
NS_PER_HOUR = 3_600 * NS_PER_S
FUNDING_INTERVAL_NS = 8 * NS_PER_HOUR

# Hard bounds. Market configuration may only narrow them.
SIZE_E6_MAX = 10_000_000 * USDC_E6  # 10M USDC notional per position
AMOUNT_E6_MAX = 1_000_000_000 * USDC_E6  # one deposit, withdrawal or margin change: 1B USDC
EXTERNAL_E6_MAX = 1_000_000_000_000 * USDC_E6  # all deposits ever: 1T USDC, far below 2**63
PRICE_E8_MAX = 10_000_000 * PRICE_SCALE_E8  # 10M USD per base unit; below 2**53, so exact as a float (risk/bands.py)
RATE_E9_MAX = 100_000_000  # |rate| <= 10% per 8h interval
LEVERAGE_MAX = 100
# A position's PnL is clamped to this (a trillion USDC), so equity and margins + PnL stay
# far inside int64 whatever the price ratio.
PNL_E6_MAX = 1_000_000_000_000 * USDC_E6
CLIENT_ID_LEN_MAX = 64
REF_LEN_MAX = 128
AGENT_LEN_MAX = 64
SIGNATURE_LEN_MAX = 128
# Oracle validity (engine/oracle.py): a close-only age up to a day; the TWAP window 1 s - 1 h;
# the volatility bound up to a 101x move (beyond it the guard means nothing).
ORACLE_CLOSE_AGE_NS_MAX = 24 * NS_PER_HOUR
TWAP_WINDOW_NS_MIN = NS_PER_S
TWAP_WINDOW_NS_MAX = NS_PER_HOUR
VOLATILITY_BPS_MAX = 1_000_000
# Oracle provenance (OracleUpdate): the source (room for a recorded one's "recorded:pyth:<id>"),
# the feed id, and the sources a price was made of (how many, and each name).
ORACLE_SOURCE_LEN_MAX = 160
FEED_ID_LEN_MAX = 128
SOURCES_MAX = 16
SOURCE_NAME_LEN_MAX = 64


def div_half_even(numerator: int, denominator: int) -> int:
    """Divide exact integers, rounding half to even. ``denominator`` must be positive."""
    quotient, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2 == 1):
        quotient += 1
    return quotient


def div_ceil(numerator: int, denominator: int) -> int:
    """Divide exact non-negative integers, rounding up (what a party must put up)."""
    return -(-numerator // denominator)


def in_range(value: int, low: int, high: int) -> bool:
    return low <= value <= high
