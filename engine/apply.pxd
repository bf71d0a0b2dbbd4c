# Cython declarations augmenting apply.py in the compiled engine: the state argument is a
# State (engine/state.pxd), so its attributes are read and written as slots, and each event
# is its struct (engine/structs.pxd), so its fields are read at their offsets. Nothing else
# is typed: every value stays a Python object, as in the interpreted engine.
cimport cython
cimport engine.structs as structs
from engine.lifecycles cimport Lifecycle
from engine.oracle cimport twap_after
from engine.risk cimport bands
from engine.state cimport Oracle, Quote, Rfq, State, Table, _Views

# The lifecycles' tables (imported from engine.lifecycles): typed, so ``next`` is a C call.
cdef Lifecycle RFQ, QUOTE, POSITION

cpdef apply(State state, structs._Event event)  # any event: its base's fields (seq) come first
cpdef apply_all(State state, list events)
@cython.locals(v=_Views, t=structs.Transfer)
cpdef _move(State state, transfers)
@cython.locals(v=_Views)
cpdef _add(State state, account, ref, delta_e6)
cpdef _remember_client_id(State state, agent, client_id, event)
cpdef _deposited(State state, structs.Deposited e)
cpdef _withdrawn(State state, structs.Withdrawn e)
cpdef _rfq_opened(State state, structs.RfqOpened e)
@cython.locals(quote=Quote, rfq=Rfq)
cpdef _quote_submitted(State state, structs.QuoteSubmitted e)
@cython.locals(quote=Quote, rfq=Rfq)
cpdef _end_quote(State state, quote_id, happened)
@cython.locals(rfq=Rfq)
cpdef _close_rfq(State state, rfq_id, happened)
cpdef _count_down(dict counts, agent)
cpdef _quote_released(State state, structs.QuoteReleased e)
cpdef _rfq_closed(State state, structs.RfqClosed e)
@cython.locals(positions=Table, t=_Views)
cpdef _position_opened(State state, structs.PositionOpened e)
@cython.locals(t=Table)
cpdef _funding_settled(State state, structs.FundingSettled e)
@cython.locals(t=Table)
cpdef _settled_rows(State state, e)
cpdef _remove_position(State state, position_id, happened)
cpdef _position_closed(State state, structs.PositionClosed e)
cpdef _position_liquidated(State state, structs.PositionLiquidated e)
cpdef _margin_changed(State state, structs.MarginChanged e)
@cython.locals(o=Oracle, limits=structs.Market)
cpdef _oracle_updated(State state, structs.OracleUpdated e)
cpdef _oracle_source_switched(State state, structs.OracleSourceSwitched e)
@cython.locals(t=Table)
cpdef _liquidation_watch(State state, structs.LiquidationWatch e)
cpdef _checkpoint(State state, structs.Checkpoint e)
