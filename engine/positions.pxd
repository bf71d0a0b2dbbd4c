# Cython declarations augmenting positions.py in the compiled engine (as engine/apply.pxd):
# the state and the context arguments are a State and a Ctx (engine/state.pxd, context.pxd),
# their attributes read as slots; every value stays a Python object.
from engine.context cimport Ctx
from engine.state cimport State

cpdef party_side(State state, row, agent)
cpdef decide_close(State state, c, Ctx ctx)
cpdef close_event(State state, row, fraction_bps, reason, agent, client_id, Ctx ctx, accrue_until_ns =*)
cpdef due_expiry(State state, until_ns, Ctx ctx)
