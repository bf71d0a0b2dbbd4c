# Cython declarations augmenting oracle.py in the compiled engine (as engine/apply.pxd):
# the state and the context arguments are a State and a Ctx (engine/state.pxd, context.pxd),
# their attributes read as slots; every value stays a Python object.
cimport cython
cimport engine.structs as structs
from engine.context cimport Ctx
from engine.risk cimport bands
from engine.state cimport State
from engine.units cimport div_ceil, div_half_even

cpdef too_volatile(price_e8, twap_e8, volatility_bps_max)
cpdef is_stale(State state, market, now_ns)
@cython.locals(limits=structs.Market)
cpdef validity(State state, market, now_ns)
cpdef require(State state, market, now_ns, action)
cpdef guard(State state, market, now_ns)
@cython.locals(limits=structs.Market)
cpdef _refusal(State state, market, now_ns, action, grade)
cpdef decide_update(State state, structs.OracleUpdate c, Ctx ctx)
cpdef decide_switch(State state, structs.SwitchOracleSource c, Ctx ctx)
cpdef twap_after(twap_e8, last_price_e8, last_publish_ns, publish_ns, window_ns)
