# Cython declarations augmenting settlement.py in the compiled engine (as engine/apply.pxd):
# the state and the context arguments are a State and a Ctx (engine/state.pxd, context.pxd),
# their attributes read as slots; every value stays a Python object.
cimport cython
from engine.risk cimport formula_calls
from engine.context cimport transfer
from engine.state cimport State, _Views
from engine.units cimport div_half_even


# The numbers of one close-out, an extension type: its fields are read as slots by the
# modules that cimport it (positions, liquidation). Ints only: no reference cycles.
@cython.no_gc
cdef class CloseOut:
    cdef public object funding_long_to_short_e6, closed_size_e6, pnl_long_e6, insurance_e6, bad_debt_e6
    cdef public object margin_long_e6, margin_short_e6


@cython.locals(v=_Views, result=CloseOut)
cpdef close_out(State state, row, price_e8, fraction_bps, now_ns, list out)
@cython.locals(v=_Views)
cpdef return_margins(State state, row, long_e6, short_e6, list out)
