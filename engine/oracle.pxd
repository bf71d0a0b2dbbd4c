# Cython declarations augmenting oracle.py in the compiled engine (as engine/apply.pxd):
# the state and the context arguments are a State and a Ctx (engine/state.pxd, context.pxd),
# their attributes read as slots; every value stays a Python object but in the price
# arithmetic: prices, TWAPs, confidences (<= PRICE_E8_MAX, 2**50), bps bounds (<= 2**20) and
# the TWAP window (<= 2**42) are C 128-bit integers there (units.pxd), so every product
# (<= 2**92) is exact, as on Python ints, and costs no allocation.
cimport cython
cimport engine.structs as structs
from engine.context cimport Ctx
from engine.risk cimport bands
from engine.state cimport State
from engine.units cimport div_ceil, div_half_even, int128

cdef long long BPS_SCALE  # the import of units.BPS_SCALE, as a C constant in the price arithmetic

@cython.locals(low=int128, high=int128)
cpdef bint too_volatile(int128 price_e8, int128 twap_e8, int128 volatility_bps_max) except -1
cpdef is_stale(State state, market, now_ns)
@cython.locals(limits=structs.Market, price_e8=int128, conf_e8=int128, conf_bps_max=int128)
cpdef validity(State state, market, now_ns)
cpdef require(State state, market, now_ns, action)
cpdef guard(State state, market, now_ns)
@cython.locals(limits=structs.Market)
cpdef _refusal(State state, market, now_ns, action, grade)
cpdef decide_update(State state, structs.OracleUpdate c, Ctx ctx)
cpdef decide_switch(State state, structs.SwitchOracleSource c, Ctx ctx)
# The publish times stay Python ints (a command's publish_ns is not bounded); the time held
# is at most the window, so C from there on.
@cython.locals(held_ns=cython.longlong)
cpdef twap_after(int128 twap_e8, int128 last_price_e8, last_publish_ns, publish_ns, long long window_ns)
