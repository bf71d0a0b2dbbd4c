# Cython declarations augmenting positions.py in the compiled engine (as engine/apply.pxd):
# the state and the context arguments are a State and a Ctx (engine/state.pxd, context.pxd),
# their attributes read as slots; every value stays a Python object.
cimport engine.structs as structs
cimport cython
from engine cimport oracle
from engine.context cimport Ctx
from engine.risk cimport settlement
from engine.risk.settlement cimport CloseOut
from engine.state cimport State, _Views
from engine.units cimport div_half_even

@cython.locals(v=_Views)
cpdef party_side(State state, row, agent)
@cython.locals(v=_Views)
cpdef decide_close(State state, structs.ClosePosition c, Ctx ctx)
@cython.locals(v=_Views, done=CloseOut)
cpdef close_event(State state, row, fraction_bps, reason, agent, client_id, Ctx ctx, accrue_until_ns =*)
cpdef due_expiry(State state, until_ns, Ctx ctx)
