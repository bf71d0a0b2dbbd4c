# Cython declarations augmenting margin.py in the compiled engine (as engine/apply.pxd):
# the state and the context arguments are a State and a Ctx (engine/state.pxd, context.pxd),
# their attributes read as slots; every value stays a Python object.
cimport engine.structs as structs
from engine.context cimport Ctx
cimport cython
from engine.risk cimport formula_calls
from engine.state cimport State, Table

cpdef _checked(State state, c, Ctx ctx)
cpdef _event(State state, row, side, c, delta_e6, Ctx ctx)
cpdef decide_add(State state, structs.AddMargin c, Ctx ctx)
@cython.locals(t=Table)
cpdef decide_remove(State state, structs.RemoveMargin c, Ctx ctx)
