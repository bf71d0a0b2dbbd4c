# Cython declarations augmenting core.py in the compiled engine (as engine/apply.pxd):
# the state and the context arguments are a State and a Ctx (engine/state.pxd, context.pxd),
# their attributes read as slots; every value stays a Python object.
from engine.apply cimport apply
from engine.context cimport Ctx
from engine.decide cimport decide
from engine.state cimport State

cpdef execute(State state, command, ts_ns, cmd_id)
cpdef _finish_tick(State state, command, ts_ns, cmd_id, events)
