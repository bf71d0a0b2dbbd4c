"""Bodies of the C entry points through which the compiled engine calls the money formulas
(``engine/risk/formula_calls.pyx`` compiles each with ``numba.cfunc``, with its signature,
and calls its machine code directly).

Each body is the call of the formula of ``formulas`` itself — numba compiles that very
function into it, as into the kernels — so a rule keeps its one definition. Every argument
is an ``int64`` (as the dispatcher types the engine's Python ints; a flag comes as 0/1 and
is made the bool the formula takes, as its callers pass it); the result is written to
``out`` (both values of a tuple) and the body returns 1. When the formula raises (a
division by zero: a bug upstream), numba's cfunc wrapper reports the exception as
unraisable and returns 0 instead; the caller then calls the formula through its
dispatcher, which raises it.

Only the compiled engine imports this module (the formulas are plain Python functions
under ``NUMBA_DISABLE_JIT``, which a cfunc cannot call).
"""

from engine.risk import formulas


def pnl_long_e6(size_e6, entry_price_e8, price_e8, out):
    out[0] = formulas.pnl_long_e6(size_e6, entry_price_e8, price_e8)
    return 1


def requirement_e6(margin_open_e6, size_open_e6, size_e6, entry_price_e8, price_e8, ratio_bps, out):
    out[0] = formulas.requirement_e6(margin_open_e6, size_open_e6, size_e6, entry_price_e8, price_e8, ratio_bps)
    return 1


def liquidatable_side(margin_long_e6, margin_short_e6, margin_open_long_e6, margin_open_short_e6,
                      size_open_e6, size_e6, entry_price_e8, price_e8, maintenance_bps, out):
    out[0], out[1] = formulas.liquidatable_side(margin_long_e6, margin_short_e6, margin_open_long_e6,
                                                margin_open_short_e6, size_open_e6, size_e6, entry_price_e8,
                                                price_e8, maintenance_bps)
    return 1


def safe_band_e8(margin_long_e6, margin_short_e6, margin_open_long_e6, margin_open_short_e6, size_open_e6,
                 size_e6, entry_price_e8, maintenance_bps, out):
    out[0], out[1] = formulas.safe_band_e8(margin_long_e6, margin_short_e6, margin_open_long_e6,
                                           margin_open_short_e6, size_open_e6, size_e6, entry_price_e8,
                                           maintenance_bps)
    return 1


def funding_long_to_short_e6(size_e6, rate_e9, taker_is_long, elapsed_ns, margin_long_e6, margin_short_e6, out):
    out[0], out[1] = formulas.funding_long_to_short_e6(size_e6, rate_e9, taker_is_long != 0, elapsed_ns,
                                                       margin_long_e6, margin_short_e6)
    return 1
