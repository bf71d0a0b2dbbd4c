# Cython declarations of formula_calls.pyx, the compiled engine's calls of the money
# formulas: compiled callers cimport them (``from engine.risk cimport formula_calls`` beside
# the .py's import), so a call is a C call. The arguments are C int64s, converted from the
# caller's Python ints (OverflowError beyond int64, where the dispatcher would have typed a
# uint64); the results are Python objects, as the dispatcher returns them.
from libc.stdint cimport int64_t

cpdef pnl_long_e6(int64_t size_e6, int64_t entry_price_e8, int64_t price_e8)
cpdef requirement_e6(int64_t margin_open_e6, int64_t size_open_e6, int64_t size_e6, int64_t entry_price_e8,
                     int64_t price_e8, int64_t ratio_bps)
cpdef liquidatable_side(int64_t margin_long_e6, int64_t margin_short_e6, int64_t margin_open_long_e6,
                        int64_t margin_open_short_e6, int64_t size_open_e6, int64_t size_e6, int64_t entry_price_e8,
                        int64_t price_e8, int64_t maintenance_bps)
cpdef safe_band_e8(int64_t margin_long_e6, int64_t margin_short_e6, int64_t margin_open_long_e6,
                   int64_t margin_open_short_e6, int64_t size_open_e6, int64_t size_e6, int64_t entry_price_e8,
                   int64_t maintenance_bps)
cpdef funding_long_to_short_e6(int64_t size_e6, int64_t rate_e9, int64_t taker_is_long, int64_t elapsed_ns,
                               int64_t margin_long_e6, int64_t margin_short_e6)
