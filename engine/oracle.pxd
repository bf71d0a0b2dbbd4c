# Cython declarations augmenting oracle.py in the compiled engine (as engine/apply.pxd):
# the state and the context arguments are a State and a Ctx (engine/state.pxd, context.pxd),
# their attributes read as slots; every value stays a Python object.
from engine.context cimport Ctx
from engine.state cimport State

cpdef is_stale(State state, market, now_ns)
cpdef validity(State state, market, now_ns)
cpdef require(State state, market, now_ns, action)
cpdef guard(State state, market, now_ns)
cpdef _refusal(State state, market, now_ns, action, grade)
cpdef decide_update(State state, c, Ctx ctx)
cpdef decide_switch(State state, c, Ctx ctx)
