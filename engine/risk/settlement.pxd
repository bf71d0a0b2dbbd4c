# Cython declarations augmenting settlement.py in the compiled engine (as engine/apply.pxd):
# the state and the context arguments are a State and a Ctx (engine/state.pxd, context.pxd),
# their attributes read as slots; every value stays a Python object.
from engine.context cimport Ctx
from engine.state cimport State

cpdef close_out(State state, row, price_e8, fraction_bps, now_ns, out)
cpdef return_margins(State state, row, long_e6, short_e6, out)
