# Cython declarations augmenting apply.py in the compiled engine: the state argument is a
# State (engine/state.pxd), so its attributes are read and written as slots. Nothing else is
# typed: every value stays a Python object, as in the interpreted engine.
cimport cython
from engine.lifecycles cimport Lifecycle
from engine.oracle cimport twap_after
from engine.risk cimport bands
from engine.state cimport Oracle, Quote, Rfq, State, Table, _Views

# The lifecycles' tables (imported from engine.lifecycles): typed, so ``next`` is a C call.
cdef Lifecycle RFQ, QUOTE, POSITION

cpdef apply(State state, event)
@cython.locals(v=_Views)
cpdef _move(State state, transfers)
@cython.locals(v=_Views)
cpdef _add(State state, account, ref, delta_e6)
cpdef _remember_client_id(State state, agent, client_id, event)
cpdef _deposited(State state, e)
cpdef _withdrawn(State state, e)
cpdef _rfq_opened(State state, e)
@cython.locals(quote=Quote)
cpdef _quote_submitted(State state, e)
@cython.locals(quote=Quote)
cpdef _end_quote(State state, quote_id, happened)
@cython.locals(rfq=Rfq)
cpdef _close_rfq(State state, rfq_id, happened)
cpdef _count_down(dict counts, agent)
cpdef _quote_released(State state, e)
cpdef _rfq_closed(State state, e)
@cython.locals(positions=Table, t=_Views)
cpdef _position_opened(State state, e)
@cython.locals(t=Table)
cpdef _funding_settled(State state, e)
@cython.locals(t=Table)
cpdef _settled_rows(State state, e)
cpdef _remove_position(State state, position_id, happened)
cpdef _position_closed(State state, e)
cpdef _position_liquidated(State state, e)
cpdef _margin_changed(State state, e)
@cython.locals(o=Oracle)
cpdef _oracle_updated(State state, e)
cpdef _oracle_source_switched(State state, e)
@cython.locals(t=Table)
cpdef _liquidation_watch(State state, e)
cpdef _checkpoint(State state, e)
