"""The money formulas of DESIGN §4, each in one place.

Compiled with numba: the kernels (``engine/kernels``) inline these very functions and the
scalar paths of ``decide`` call them too, so a rule cannot differ between the sweep and
the single-position path. The reference twins call their ``py_func`` (plain Python).

A float64 intermediate is rounded once, half to even (``round`` does that in Python and in
numba alike), and that integer is what moves between accounts. The operand order is fixed
and there is no fused multiply-add, so compiled and interpreted results agree bit for bit.
"""

import math

import numba as nb

from engine.units import BPS_SCALE, FUNDING_INTERVAL_NS, PNL_E6_MAX, RATE_SCALE_E9

formula = nb.njit(cache=True, nogil=True)

FUNDING_DENOMINATOR = float(RATE_SCALE_E9 * FUNDING_INTERVAL_NS)
PNL_E6_MAX_F = float(PNL_E6_MAX)
BPS_SCALE_F = float(BPS_SCALE)


@formula
def pnl_long_e6(size_e6, entry_price_e8, price_e8):
    """PnL of the long side in micro-USDC: ``qty × (P − entry)`` with ``qty = size / entry``.

    Clamped to ``±PNL_E6_MAX`` so a wild price ratio cannot leave int64 (no loser could
    pay that much anyway: the excess is bad debt either way).
    """
    pnl = float(size_e6) * float(price_e8 - entry_price_e8) / float(entry_price_e8)
    return round(max(-PNL_E6_MAX_F, min(PNL_E6_MAX_F, pnl)))


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


@formula
def liquidatable_side(margin_long_e6, margin_short_e6, margin_open_long_e6, margin_open_short_e6,
                      size_open_e6, size_e6, entry_price_e8, price_e8, maintenance_bps):
    """``(side, pnl_long_e6)``: the side whose equity ``margin + pnl`` is below
    maintenance at ``price_e8``, and the long's PnL there.

    SIDE_NONE if neither; if both are, the one further below (rare: only after funding
    drained a side's margin).
    """
    pnl = pnl_long_e6(size_e6, entry_price_e8, price_e8)
    deficit_long = requirement_e6(margin_open_long_e6, size_open_e6, size_e6, entry_price_e8, price_e8,
                                  maintenance_bps) - float(margin_long_e6 + pnl)
    deficit_short = requirement_e6(margin_open_short_e6, size_open_e6, size_e6, entry_price_e8, price_e8,
                                   maintenance_bps) - float(margin_short_e6 - pnl)
    if deficit_long <= 0.0 and deficit_short <= 0.0:
        return SIDE_NONE, pnl
    return (SIDE_LONG if deficit_long >= deficit_short else SIDE_SHORT), pnl


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
