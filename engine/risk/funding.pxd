# Cython declarations augmenting funding.py in the compiled engine (as engine/apply.pxd):
# the state and the context arguments are a State and a Ctx (engine/state.pxd, context.pxd),
# their attributes read as slots; every value stays a Python object.
from engine.context cimport Ctx
from engine.state cimport State

cpdef next_boundary(State state, now_ns)
cpdef decide_boundary(State state, boundary_ns, Ctx ctx)
