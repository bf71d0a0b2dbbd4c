# Cython declarations augmenting decide.py in the compiled engine (as engine/apply.pxd):
# the state and the context arguments are a State and a Ctx (engine/state.pxd, context.pxd),
# their attributes read as slots; every value stays a Python object.
from engine.context cimport Ctx
from engine.state cimport State

cpdef _tick(State state, c, Ctx ctx)
cpdef decide(State state, command, ts_ns, cmd_id)
cpdef _check_client_id_and_signature(State state, actor, client_id, signature, ts_ns)
