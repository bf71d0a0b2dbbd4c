"""The compiled engine's calls of the money formulas (``formula_calls.py`` is the
interpreted engine's): the same functions, calling numba's machine code of the formulas of
``formulas`` directly instead of through numba's dispatcher.

At import, each formula's entry point (``formula_entries``: the call of the formula, its
result written to ``out``) is compiled by ``numba.cfunc`` with the C signature declared
here — or loaded from numba's cache, keyed like the kernels' (``ledger.compiled``) — and
its address kept as a C function pointer. A call converts the arguments to int64 (as the
dispatcher types the engine's ints), calls the pointer (a few ns, where the dispatcher
costs ~300-400) and returns the result as the dispatcher would: a Python int, float or a
tuple. When there is no entry point (``NUMBA_DISABLE_JIT``: the formulas are plain Python)
or the formula raised in it (the entry returned 0), the call goes to the formula itself,
which returns or raises as it always did.
"""

from libc.stdint cimport int32_t, int64_t, uintptr_t

import numba as nb
from numba import types as nt

from engine.risk import formula_entries, formulas

# The C signatures of the entry points, and the same in numba's types (below).
ctypedef int32_t (*Ints3)(int64_t, int64_t, int64_t, int64_t*) noexcept nogil
ctypedef int32_t (*Ints6F)(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, double*) noexcept nogil
ctypedef int32_t (*Ints6I)(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t*) noexcept nogil
ctypedef int32_t (*Ints8F)(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                           double*) noexcept nogil
ctypedef int32_t (*Ints9I)(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                           int64_t*) noexcept nogil

cdef Ints3 _pnl_long_e6 = NULL
cdef Ints6F _requirement_e6 = NULL
cdef Ints9I _liquidatable_side = NULL
cdef Ints8F _safe_band_e8 = NULL
cdef Ints6I _funding_long_to_short_e6 = NULL

ENTRY_POINTS = {}  # name -> numba CFunc: holds the machine code the pointers point into


cdef uintptr_t _compiled(name, int n_ints, out) except 0:
    """Compile (or load) the entry point ``name``: ``n_ints`` int64 arguments and ``out``."""
    signature = nt.int32(*([nt.int64] * n_ints), nt.CPointer(out))
    ENTRY_POINTS[name] = nb.cfunc(signature, cache=True)(getattr(formula_entries, name))
    return ENTRY_POINTS[name].address


if not nb.config.DISABLE_JIT:
    _pnl_long_e6 = <Ints3>_compiled("pnl_long_e6", 3, nt.int64)
    _requirement_e6 = <Ints6F>_compiled("requirement_e6", 6, nt.float64)
    _liquidatable_side = <Ints9I>_compiled("liquidatable_side", 9, nt.int64)
    _safe_band_e8 = <Ints8F>_compiled("safe_band_e8", 8, nt.float64)
    _funding_long_to_short_e6 = <Ints6I>_compiled("funding_long_to_short_e6", 6, nt.int64)


cpdef pnl_long_e6(int64_t size_e6, int64_t entry_price_e8, int64_t price_e8):
    cdef int64_t out[1]
    if _pnl_long_e6 != NULL and _pnl_long_e6(size_e6, entry_price_e8, price_e8, out):
        return out[0]
    return formulas.pnl_long_e6(size_e6, entry_price_e8, price_e8)


cpdef requirement_e6(int64_t margin_open_e6, int64_t size_open_e6, int64_t size_e6, int64_t entry_price_e8,
                     int64_t price_e8, int64_t ratio_bps):
    cdef double out[1]
    if _requirement_e6 != NULL and _requirement_e6(margin_open_e6, size_open_e6, size_e6, entry_price_e8, price_e8,
                                                   ratio_bps, out):
        return out[0]
    return formulas.requirement_e6(margin_open_e6, size_open_e6, size_e6, entry_price_e8, price_e8, ratio_bps)


cpdef liquidatable_side(int64_t margin_long_e6, int64_t margin_short_e6, int64_t margin_open_long_e6,
                        int64_t margin_open_short_e6, int64_t size_open_e6, int64_t size_e6, int64_t entry_price_e8,
                        int64_t price_e8, int64_t maintenance_bps):
    cdef int64_t out[2]
    if _liquidatable_side != NULL and _liquidatable_side(margin_long_e6, margin_short_e6, margin_open_long_e6,
                                                         margin_open_short_e6, size_open_e6, size_e6, entry_price_e8,
                                                         price_e8, maintenance_bps, out):
        return out[0], out[1]
    return formulas.liquidatable_side(margin_long_e6, margin_short_e6, margin_open_long_e6, margin_open_short_e6,
                                      size_open_e6, size_e6, entry_price_e8, price_e8, maintenance_bps)


cpdef safe_band_e8(int64_t margin_long_e6, int64_t margin_short_e6, int64_t margin_open_long_e6,
                   int64_t margin_open_short_e6, int64_t size_open_e6, int64_t size_e6, int64_t entry_price_e8,
                   int64_t maintenance_bps):
    cdef double out[2]
    if _safe_band_e8 != NULL and _safe_band_e8(margin_long_e6, margin_short_e6, margin_open_long_e6,
                                               margin_open_short_e6, size_open_e6, size_e6, entry_price_e8,
                                               maintenance_bps, out):
        return out[0], out[1]
    return formulas.safe_band_e8(margin_long_e6, margin_short_e6, margin_open_long_e6, margin_open_short_e6,
                                 size_open_e6, size_e6, entry_price_e8, maintenance_bps)


cpdef funding_long_to_short_e6(int64_t size_e6, int64_t rate_e9, int64_t taker_is_long, int64_t elapsed_ns,
                               int64_t margin_long_e6, int64_t margin_short_e6):
    cdef int64_t out[2]
    if _funding_long_to_short_e6 != NULL and _funding_long_to_short_e6(size_e6, rate_e9, taker_is_long, elapsed_ns,
                                                                       margin_long_e6, margin_short_e6, out):
        return out[0], out[1]
    return formulas.funding_long_to_short_e6(size_e6, rate_e9, taker_is_long != 0, elapsed_ns, margin_long_e6,
                                             margin_short_e6)
