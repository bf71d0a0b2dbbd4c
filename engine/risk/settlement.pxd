# Cython declarations augmenting settlement.py in the compiled engine (as engine/apply.pxd):
# the state and the context arguments are a State and a Ctx (engine/state.pxd, context.pxd),
# their attributes read as slots; every value stays a Python object.
cimport cython
from engine.context cimport transfer
from engine.state cimport State, _Views
from engine.units cimport div_half_even

@cython.locals(v=_Views)
cpdef close_out(State state, row, price_e8, fraction_bps, now_ns, list out)
@cython.locals(v=_Views)
cpdef return_margins(State state, row, long_e6, short_e6, list out)
