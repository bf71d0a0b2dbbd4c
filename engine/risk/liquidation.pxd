# Cython declarations augmenting liquidation.py in the compiled engine (as engine/apply.pxd):
# the state and the context arguments are a State and a Ctx (engine/state.pxd, context.pxd),
# their attributes read as slots; every value stays a Python object.
cimport engine.structs as structs
from engine.context cimport Ctx
cimport cython
from engine.risk cimport formula_calls
from engine.risk cimport settlement
from engine.risk.settlement cimport CloseOut
from engine.state cimport State, Table

cpdef watch(State state, market, price_e8, Ctx ctx, margin_long_e6 =*, margin_short_e6 =*)
@cython.locals(t=Table, m=structs.Market)
cpdef side_at(State state, row, price_e8)
cpdef decide_liquidate(State state, structs.Liquidate c, Ctx ctx)
@cython.locals(t=Table)
cpdef _not_liquidatable(State state, row, price_e8)
@cython.locals(t=Table, done=CloseOut)
cpdef liquidation_event(State state, row, side, keeper, client_id, Ctx ctx)
# A Tick phase: a C call from tick.decide_round (no closure in it, so it can be cpdef).
cpdef due_auto_liquidations(State state, Ctx ctx)
