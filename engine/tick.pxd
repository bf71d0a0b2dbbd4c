# Cython declarations augmenting tick.py in the compiled engine (as engine/apply.pxd):
# the state and the context arguments are a State and a Ctx (engine/state.pxd, context.pxd),
# their attributes read as slots; every value stays a Python object. The phases' modules are
# cimported, so each phase is a C call.
from engine cimport positions
from engine.context cimport Ctx
from engine.rfq cimport lifecycle
from engine.risk cimport funding, liquidation
from engine.state cimport State

cpdef decide_round(State state, Ctx ctx)
