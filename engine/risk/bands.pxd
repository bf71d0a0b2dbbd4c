# Cython declarations augmenting bands.py in the compiled engine (as engine/apply.pxd): the
# state is a State, its positions' views a _Views; every value stays a Python object.
cimport cython
cimport engine.structs as structs
from engine.risk cimport formula_calls
from engine.state cimport State, Table, _Views

# A price is below 2**53 (PRICE_E8_MAX): as a C double it is exact, and the comparison is C.
@cython.locals(low=cython.double, high=cython.double)
cpdef bint inside(State state, Py_ssize_t market, long long price_e8) except -1
@cython.locals(v=_Views)
cpdef skips_sweep(State state, market, price_e8)
@cython.locals(t=_Views, m=structs.Market)
cpdef narrow(State state, row)
@cython.locals(t=Table)
cpdef recompute(State state, market)
@cython.locals(t=Table)
cpdef refresh(State state)
@cython.locals(t=Table)
cpdef compute_position_bands(State state, out_low_e8, out_high_e8)
