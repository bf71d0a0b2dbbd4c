# Cython declarations augmenting lifecycle.py in the compiled engine (as engine/apply.pxd):
# the state and the context arguments are a State and a Ctx (engine/state.pxd, context.pxd),
# their attributes read as slots; every value stays a Python object.
from engine cimport oracle
from engine.context cimport Ctx, transfer
from engine.state cimport State
from engine.units cimport div_ceil, div_half_even

cpdef _open_rfq(State state, rfq_id, now_ns)
cpdef _room_for_a_position(State state)
cpdef best_live_quote(quotes, now_ns)
cpdef best_quote(rfq, now_ns)
cpdef _release(quote, reason, client_id, Ctx ctx)
cpdef decide_request(State state, c, Ctx ctx)
cpdef decide_submit(State state, c, Ctx ctx)
cpdef decide_cancel_quote(State state, c, Ctx ctx)
cpdef decide_cancel_rfq(State state, c, Ctx ctx)
cpdef decide_cancel_agent_quotes(State state, c, Ctx ctx)
cpdef due_quote_expiries(State state, Ctx ctx)
cpdef due_rfq_expiries(State state, Ctx ctx)
cpdef _open_position(State state, rfq, quote, others, signature, auto, client_id, Ctx ctx)
