"""The money formulas of DESIGN §4, each in one place.

Compiled with numba: the kernels (``engine/kernels``) inline these very functions and the
scalar paths of ``decide`` call them too, so a rule cannot differ between the sweep and
the single-position path. The reference twins call their ``py_func`` (plain Python).

A float64 intermediate is rounded once, half to even (``round`` does that in Python and in
numba alike), and that integer is what moves between accounts. The operand order is fixed
and there is no fused multiply-add, so compiled and interpreted results agree bit for bit.
The PnL and the liquidation predicate are exact — the escrow program's integers — and use
float64 only where a proven bound makes its answer the exact one (docs/engine.md, "The
liquidation predicate").
"""

import math

import numba as nb
import numpy as np

from engine.units import BPS_SCALE, FUNDING_INTERVAL_NS, PNL_E6_MAX, RATE_SCALE_E9

formula = nb.njit(cache=True, nogil=True)

FUNDING_DENOMINATOR = float(RATE_SCALE_E9 * FUNDING_INTERVAL_NS)
PNL_E6_MAX_F = float(PNL_E6_MAX)
PNL_CLAMP_EARLY_F = 1.01 * PNL_E6_MAX_F
PNL_RESIDUAL_HALF = 1 << 59
PNL_REL_ERR_BOUND = 2.0**-50  # 4× the relative error of a product then a quotient (2 × 2^-53)
BPS_SCALE_F = float(BPS_SCALE)


# Exact integer arithmetic beyond int64, in 30-bit limbs held in int64 (numba marks signed
# arithmetic "no signed wrap", so no formula may overflow, not even where the bits would
# cancel). A limb product is below 2^60 and a sum of three below 2^62: nothing overflows.
LIMB_BITS = 30
LIMB_MASK = (1 << LIMB_BITS) - 1
LOW60_MASK = (1 << (2 * LIMB_BITS)) - 1
PRODUCT_LIMBS = 9  # a product of four factors below 2^63 is below 2^252 < 2^270


@formula
def _low60_product(a, b):
    """``a × b mod 2^60`` for ``0 <= a, b < 2^63``, without overflow."""
    a0 = a & LIMB_MASK
    a1 = (a >> LIMB_BITS) & LIMB_MASK
    b0 = b & LIMB_MASK
    b1 = (b >> LIMB_BITS) & LIMB_MASK
    return (a0 * b0 + (((a1 * b0 + a0 * b1) & LIMB_MASK) << LIMB_BITS)) & LOW60_MASK


@formula
def pnl_long_e6(size_e6, entry_price_e8, price_e8):
    """PnL of the long side in micro-USDC: ``qty × (P − entry)`` with ``qty = size / entry``,
    exactly ``size × (P − entry) / entry`` rounded half to even — the same integer as the
    escrow program's ``pnl_at`` (``programs/escrow/src/escrow.c``): the magnitude rounded,
    then the sign.

    Clamped to ``±PNL_E6_MAX`` so a wild price ratio cannot leave int64 (no loser could
    pay that much anyway: the excess is bad debt either way).

    How: the float64 quotient ``estimate`` (two roundings) is within ``2^-52 × estimate``
    (and a hair) of the exact one. When it is closer than ``1/2 − 2^-50 × estimate`` to the
    integer ``q`` nearest it, so is the exact quotient: ``q`` is the answer (nearly always).
    Otherwise the residual ``r = size × |P − entry| − q × entry`` is below ``2^59`` in
    magnitude (``q <= 1.01 × PNL_E6_MAX``, entry <= 10^15) and follows exactly from both
    products modulo ``2^60``; ``q`` is then corrected by ``r / entry``, rounded half to even.
    """
    negative = price_e8 < entry_price_e8
    diff = entry_price_e8 - price_e8 if negative else price_e8 - entry_price_e8
    estimate = float(size_e6) * float(diff) / float(entry_price_e8)
    if estimate > PNL_CLAMP_EARLY_F:  # the exact quotient is certainly beyond the clamp
        return -PNL_E6_MAX if negative else PNL_E6_MAX
    q = round(estimate)
    if abs(estimate - q) < 0.5 - estimate * PNL_REL_ERR_BOUND:  # exact below 2^52: q and estimate are close
        if q > PNL_E6_MAX:
            q = PNL_E6_MAX
        return -q if negative else q
    r = (_low60_product(size_e6, diff) - _low60_product(q, entry_price_e8)) & LOW60_MASK
    if r >= PNL_RESIDUAL_HALF:  # r is in (-2^59, 2^59): undo the modulus
        r -= PNL_RESIDUAL_HALF * 2
    steps = r // entry_price_e8  # floor: 0 <= rest < entry
    q += steps
    twice_rest = 2 * (r - steps * entry_price_e8)
    if twice_rest > entry_price_e8 or (twice_rest == entry_price_e8 and q % 2 == 1):
        q += 1
    if q > PNL_E6_MAX:
        q = PNL_E6_MAX
    return -q if negative else q


@formula
def requirement_e6(margin_open_e6, size_open_e6, size_e6, entry_price_e8, price_e8, ratio_bps):
    """Margin a side needs at ``price_e8``: ``ratio × im × qty × P``, as float64.

    ``im = margin at open / size at open`` (taker: 1/leverage; maker: collateral/size),
    ``qty × P = size × P / entry``. ``ratio_bps`` is 10 000 for the initial requirement
    and the market's ``maintenance_of_initial_bps`` (50%) for maintenance. One division.
    """
    numerator = float(size_e6) * float(price_e8) * float(margin_open_e6) * float(ratio_bps)
    return numerator / (float(entry_price_e8) * float(size_open_e6) * BPS_SCALE_F)


SIDE_NONE = 0
SIDE_LONG = 1
SIDE_SHORT = 2

# Relative margin of the float64 filter of ``below_maintenance``. Each side of the inequality
# is a product of four factors: the computed one is within 4.01 u of the exact (u = 2^-53;
# three roundings, a fourth for ``float(equity)`` beyond 2^53) and the scaled comparison adds
# one more, so the float verdict is certain once the two sides differ by more than ~9 u
# (1e-15). 1e-13 leaves a margin of 100×; closer than that, the limbs decide.
EXACT_SLACK = 1e-13
_BELOW_SURE = 1.0 - EXACT_SLACK
_ABOVE_SURE = 1.0 + EXACT_SLACK


@formula
def _limbs_times(limbs, factor):
    """``limbs ×= factor`` in place (``0 <= factor < 2^63``; the product fits the limbs)."""
    f0 = factor & LIMB_MASK
    f1 = (factor >> LIMB_BITS) & LIMB_MASK
    f2 = factor >> (2 * LIMB_BITS)
    for k in range(PRODUCT_LIMBS - 1, -1, -1):  # top down: each limb reads lower, older limbs
        value = limbs[k] * f0
        if k >= 1:
            value += limbs[k - 1] * f1
        if k >= 2:
            value += limbs[k - 2] * f2
        limbs[k] = value
    carry = 0
    for k in range(PRODUCT_LIMBS):
        value = limbs[k] + carry
        limbs[k] = value & LIMB_MASK
        carry = value >> LIMB_BITS


@formula
def _product_limbs(a, b, c, d):
    """``a × b × c × d`` (each in ``[0, 2^63)``) as PRODUCT_LIMBS 30-bit limbs, lowest first."""
    limbs = np.zeros(PRODUCT_LIMBS, np.int64)
    limbs[0] = a & LIMB_MASK
    limbs[1] = (a >> LIMB_BITS) & LIMB_MASK
    limbs[2] = a >> (2 * LIMB_BITS)
    _limbs_times(limbs, b)
    _limbs_times(limbs, c)
    _limbs_times(limbs, d)
    return limbs


@formula
def _product_less(a, b, c, d, e, f, g, h):
    """``a × b × c × d < e × f × g × h``, exactly (every factor in ``[0, 2^63)``)."""
    left = _product_limbs(a, b, c, d)
    right = _product_limbs(e, f, g, h)
    for k in range(PRODUCT_LIMBS - 1, -1, -1):
        if left[k] != right[k]:
            return left[k] < right[k]
    return False


@formula
def below_maintenance(equity_e6, margin_open_e6, size_open_e6, size_e6, entry_price_e8, price_e8, maintenance_bps):
    """True when a side with ``equity_e6 = margin + pnl`` is below maintenance at ``price_e8``:
    the one liquidation predicate (DESIGN §4), the exact integer inequality of the escrow
    program's ``below_maintenance`` (``programs/escrow/src/escrow.c``)::

        equity × size_open × 10 000 × entry < margin_open × maintenance_bps × size × price

    (``equity <= 0``: below iff ``equity < 0`` or the right side is positive, as there.)
    Decided in float64 when the two sides differ by more than ``EXACT_SLACK`` (proven
    above: the float verdict is then the exact one), otherwise exactly in 30-bit limbs.
    """
    if equity_e6 <= 0:
        return equity_e6 < 0 or (margin_open_e6 != 0 and maintenance_bps != 0 and size_e6 != 0 and price_e8 != 0)
    left = float(equity_e6) * float(size_open_e6) * BPS_SCALE_F * float(entry_price_e8)
    right = float(margin_open_e6) * float(maintenance_bps) * float(size_e6) * float(price_e8)
    if left < right * _BELOW_SURE:
        return True
    if left > right * _ABOVE_SURE:
        return False
    return _product_less(equity_e6, size_open_e6, BPS_SCALE, entry_price_e8,
                         margin_open_e6, maintenance_bps, size_e6, price_e8)


@formula
def _side_of(long_below, short_below, deficit_long, deficit_short):
    """The side to liquidate: the one below, or if both are, the one further below (the
    larger float64 deficit ``requirement − equity``; long on a tie)."""
    if long_below and (deficit_long >= deficit_short or not short_below):
        return SIDE_LONG
    return SIDE_SHORT if short_below else SIDE_NONE


@formula
def liquidatable_side_exact(margin_long_e6, margin_short_e6, margin_open_long_e6, margin_open_short_e6,
                            size_open_e6, size_e6, entry_price_e8, price_e8, maintenance_bps):
    """``liquidatable_side`` by its definition: ``pnl_long_e6`` and ``below_maintenance``."""
    pnl = pnl_long_e6(size_e6, entry_price_e8, price_e8)
    long_below = below_maintenance(margin_long_e6 + pnl, margin_open_long_e6, size_open_e6, size_e6,
                                   entry_price_e8, price_e8, maintenance_bps)
    short_below = below_maintenance(margin_short_e6 - pnl, margin_open_short_e6, size_open_e6, size_e6,
                                    entry_price_e8, price_e8, maintenance_bps)
    deficit_long = requirement_e6(margin_open_long_e6, size_open_e6, size_e6, entry_price_e8, price_e8,
                                  maintenance_bps) - float(margin_long_e6 + pnl)
    deficit_short = requirement_e6(margin_open_short_e6, size_open_e6, size_e6, entry_price_e8, price_e8,
                                   maintenance_bps) - float(margin_short_e6 - pnl)
    return _side_of(long_below, short_below, deficit_long, deficit_short), pnl


@formula
def liquidatable_side(margin_long_e6, margin_short_e6, margin_open_long_e6, margin_open_short_e6,
                      size_open_e6, size_e6, entry_price_e8, price_e8, maintenance_bps):
    """``(side, pnl_long_e6)``: the side below maintenance at ``price_e8``
    (``below_maintenance``, exact), and the long's PnL there (``pnl_long_e6``, exact).

    SIDE_NONE if neither; if both are (rare: only after funding drained a side's margin),
    the one further below (``_side_of``).

    The hot path of every sweep, so it decides in float64 first: the PnL estimate rounded,
    each side's deficit ``requirement − equity`` from ``requirement_e6`` (one division).
    When the PnL estimate is clear of a half (the bound at ``pnl_long_e6``) and each deficit
    is larger than ``EXACT_SLACK × (requirement + |equity|)`` — beyond the error of the
    requirement (7 roundings, < 7.01 u) and of ``float(equity)`` (u) — the signs are the
    exact ones. Otherwise (rarely) ``liquidatable_side_exact`` decides. Same result either
    way: the exact path breaks ties between two sides below with the same float deficits.
    """
    estimate = float(size_e6) * float(price_e8 - entry_price_e8) / float(entry_price_e8)
    clamped = max(-PNL_E6_MAX_F, min(PNL_E6_MAX_F, estimate))
    pnl = round(clamped)
    requirement_long = requirement_e6(margin_open_long_e6, size_open_e6, size_e6, entry_price_e8, price_e8,
                                      maintenance_bps)
    requirement_short = requirement_e6(margin_open_short_e6, size_open_e6, size_e6, entry_price_e8, price_e8,
                                       maintenance_bps)
    equity_long = float(margin_long_e6 + pnl)
    equity_short = float(margin_short_e6 - pnl)
    deficit_long = requirement_long - equity_long
    deficit_short = requirement_short - equity_short
    magnitude = abs(clamped)
    if (abs(estimate - pnl) < 0.5 - magnitude * PNL_REL_ERR_BOUND and magnitude < PNL_E6_MAX_F
            and abs(deficit_long) > EXACT_SLACK * (requirement_long + abs(equity_long))
            and abs(deficit_short) > EXACT_SLACK * (requirement_short + abs(equity_short))):
        return _side_of(deficit_long > 0.0, deficit_short > 0.0, deficit_long, deficit_short), pnl
    return liquidatable_side_exact(margin_long_e6, margin_short_e6, margin_open_long_e6, margin_open_short_e6,
                                   size_open_e6, size_e6, entry_price_e8, price_e8, maintenance_bps)


@formula
def liquidation_price_long_e8(margin_e6, margin_open_e6, size_open_e6, size_e6, entry_price_e8, ratio_bps):
    """Price at which the long side reaches maintenance; 0.0 if it never does.

    Solves ``margin + size (P - entry) / entry = mmr × size × P / entry`` for P, with
    ``mmr = im × ratio``: ``P = entry (size - margin) / (size (1 - mmr))``.
    """
    scaled_open = float(size_open_e6) * BPS_SCALE_F
    room = scaled_open - float(margin_open_e6) * float(ratio_bps)  # (1 - mmr) × size_open × 10 000
    if room <= 0.0 or margin_e6 >= size_e6:
        return 0.0
    return float(entry_price_e8) * float(size_e6 - margin_e6) * scaled_open / (float(size_e6) * room)


@formula
def liquidation_price_short_e8(margin_e6, margin_open_e6, size_open_e6, size_e6, entry_price_e8, ratio_bps):
    """Price at which the short side reaches maintenance: ``entry (size + margin) / (size (1 + mmr))``."""
    scaled_open = float(size_open_e6) * BPS_SCALE_F
    room = scaled_open + float(margin_open_e6) * float(ratio_bps)
    return float(entry_price_e8) * float(size_e6 + margin_e6) * scaled_open / (float(size_e6) * room)


# Error allowance of ``safe_band_e8``, relative to the magnitudes involved. The deficits of
# ``liquidatable_side`` take a dozen float64 operations (relative error below 2e-15) after a
# PnL rounded to the integer (±0.5); 1e-12 leaves a margin of 500×.
BAND_SLACK = 1e-12


@formula
def safe_band_e8(margin_long_e6, margin_short_e6, margin_open_long_e6, margin_open_short_e6, size_open_e6,
                 size_e6, entry_price_e8, maintenance_bps):
    """``(low, high)``: at every price strictly between them, ``liquidatable_side`` returns
    SIDE_NONE for this position; ``low >= high`` when no price is certain. Conservative by
    construction (it only lets a sweep be skipped, never decides a liquidation).

    Exactly, each side's deficit ``requirement - (margin + pnl)`` is a line in P:
    long ``(size - margin) + (k - 1) × size × P / entry``, short ``-(size + margin) +
    (k + 1) × size × P / entry``, with ``k = margin_open × maintenance / (size_open × 10 000)``.
    The computed deficit is within ``1 + BAND_SLACK × ((k + 1) × size × P / entry + 2 size +
    margin)`` of it, so the band is where the line plus that bound stays below zero — and
    where the PnL stays within half its clamp, so the line is the whole story.
    """
    entry = float(entry_price_e8)
    s = float(size_e6)
    slope = s / entry
    g = BAND_SLACK
    scaled_open = float(size_open_e6) * BPS_SCALE_F
    k_long = float(margin_open_long_e6) * float(maintenance_bps) / scaled_open
    k_short = float(margin_open_short_e6) * float(maintenance_bps) / scaled_open
    reach = entry * (0.5 * PNL_E6_MAX_F / s)
    low = entry - reach
    high = entry + reach
    m = float(margin_long_e6)  # long: safe where c + a × P < 0
    c = (s - m) + 1.0 + g * (2.0 * s + m)
    a = slope * ((k_long - 1.0) + g * (k_long + 1.0))
    if a < 0.0:
        low = max(low, c / -a)
    elif a > 0.0:
        high = min(high, -c / a)
    elif c >= 0.0:
        return math.inf, -math.inf
    m = float(margin_short_e6)  # short: the same, with a > 0 always
    c = -(s + m) + 1.0 + g * (2.0 * s + m)
    a = slope * (k_short + 1.0) * (1.0 + g)
    high = min(high, -c / a)
    # Narrow by the error of the divisions above as well.
    return low + abs(low) * g, high - abs(high) * g


@formula
def funding_due_e6(size_e6, rate_e9, elapsed_ns):
    """Funding owed by the taker to the maker for ``elapsed_ns``: ``size × rate × dt / 8h``."""
    return round(float(size_e6) * float(rate_e9) * float(elapsed_ns) / FUNDING_DENOMINATOR)


@formula
def funding_long_to_short_e6(size_e6, rate_e9, taker_is_long, elapsed_ns, margin_long_e6, margin_short_e6):
    """Signed funding transfer between the margins (> 0: long pays short), capped by what
    the payer has. Returns ``(transfer, shortfall)``: the shortfall is owed but unpaid."""
    due = funding_due_e6(size_e6, rate_e9, elapsed_ns)
    if not taker_is_long:
        due = -due
    if due > 0:
        paid = min(due, margin_long_e6)
        return paid, due - paid
    paid = min(-due, margin_short_e6)
    return -paid, -due - paid
