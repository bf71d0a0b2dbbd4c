# Cython declarations augmenting lifecycle.py in the compiled engine (as engine/apply.pxd):
# the state and the context arguments are a State and a Ctx (engine/state.pxd, context.pxd),
# their attributes read as slots, as are those of the RFQs and quotes (Rfq, Quote); every
# value stays a Python object.
cimport engine.structs as structs
cimport cython
from engine cimport oracle
from engine.context cimport Ctx, transfer
from engine.state cimport Quote, Rfq, State
from engine.units cimport div_ceil, div_half_even

@cython.locals(rfq=Rfq)
cpdef _open_rfq(State state, rfq_id, now_ns)
cpdef quote_rank(Quote quote)
cpdef _room_for_a_position(State state)
cpdef _lifetime_ms(requested_ms, default_ms, low_ms, high_ms, field)
@cython.locals(best=Quote, quote=Quote)
cpdef best_live_quote(quotes, now_ns)
cpdef best_quote(Rfq rfq, now_ns)
cpdef _release(Quote quote, reason, client_id, Ctx ctx)
cpdef _close_unfilled(Rfq rfq, reason, client_id, Ctx ctx)
@cython.locals(m=structs.Market)
cpdef decide_request(State state, structs.RequestQuote c, Ctx ctx)
@cython.locals(rfq=Rfq, replaced=Quote, arriving=Quote, best=Quote, m=structs.Market)
cpdef decide_submit(State state, structs.SubmitQuote c, Ctx ctx)
@cython.locals(rfq=Rfq, quote=Quote)
cpdef decide_accept(State state, structs.AcceptQuote c, Ctx ctx)
@cython.locals(quote=Quote)
cpdef decide_cancel_quote(State state, structs.CancelQuote c, Ctx ctx)
@cython.locals(rfq=Rfq)
cpdef decide_cancel_rfq(State state, structs.CancelRfq c, Ctx ctx)
cpdef decide_cancel_agent_quotes(State state, structs.CancelAgentQuotes c, Ctx ctx)
@cython.locals(quote=Quote)
cpdef due_quote_expiries(State state, Ctx ctx)
@cython.locals(rfq=Rfq, quote=Quote)
cpdef due_rfq_expiries(State state, Ctx ctx)
@cython.locals(other=Quote)
cpdef _open_position(State state, Rfq rfq, Quote quote, others, signature, auto, client_id, Ctx ctx)
