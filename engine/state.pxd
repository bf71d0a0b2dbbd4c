# Cython declarations augmenting state.py in the compiled engine (setup.py NATIVE_MODULES):
# the state's classes become extension types whose attributes are slots, so that modules
# that know a variable is a State (their own .pxd says so) read and write its attributes
# without a dictionary lookup. Every attribute is a Python object, as in the interpreted
# engine: nothing here changes a value or an operation (docs/engine.md, "Compiled engine").
# An attribute the .py sets must be declared here, and nothing may be added to these
# objects from outside (the compiled engine would raise AttributeError). Containers are
# declared ``dict`` / ``list`` where the .py only ever stores one (never a subclass): a
# typed container's ``.get`` or ``[k]`` is a C call instead of a method lookup, with the
# same semantics; storing anything else raises TypeError in the compiled engine only.

cimport cython
cimport engine.structs as structs
from libc.stdint cimport int8_t, int16_t, int64_t


# The columns' views are typed memoryviews of their dtypes (POSITION_COLUMNS, AGENT_COLUMNS):
# ``v.size_e6[row]`` is a C array access; a value read is a Python int, as from a memoryview;
# a value written must fit the dtype or raises (OverflowError here, ValueError from a
# memoryview), never wraps. Read as a whole from Python, such an attribute is a new
# memoryview object each time: compiled code reads elements through a typed _Views.
cdef class _Views:
    cdef public int8_t[:] status, taker_is_long
    cdef public int16_t[:] market
    cdef public int64_t[:] position_id, long_agent, short_agent, size_e6, size_open_e6
    cdef public int64_t[:] entry_price_e8, rate_e9, margin_long_e6, margin_short_e6, margin_open_long_e6
    cdef public int64_t[:] margin_open_short_e6, opened_ns, last_funding_ns, expires_ns, flagged_ns
    cdef public int64_t[:] free_e6, held_e6
    cdef public double[:] band_low_e8, band_high_e8


@cython.final  # no subclass: alloc and release are direct C calls
cdef class Table:
    cdef public dict dtypes, derived
    cdef public list free_rows
    cdef public object capacity, high_water, live
    cdef public _Views v
    cdef public object status, position_id, market, taker_is_long, long_agent, short_agent, size_e6, size_open_e6
    cdef public object entry_price_e8, rate_e9, margin_long_e6, margin_short_e6, margin_open_long_e6
    cdef public object margin_open_short_e6, opened_ns, last_funding_ns, expires_ns, flagged_ns
    cdef public object free_e6, held_e6
    cdef public object band_low_e8, band_high_e8
    cpdef alloc(self)
    cpdef release(self, row)


# Records with no reference cycles (a Quote holds ints and strs, an Rfq its quotes): left
# out of the cyclic GC, as their msgspec predecessors were (gc=False); a few kept on a free
# list (every round of RFQ, quotes and fill makes and drops them).
@cython.no_gc
@cython.freelist(8)
cdef class Quote:
    cdef public object quote_id, rfq_id, maker, rate_e9, collateral_e6, fee_e6, created_ns, expires_ns


@cython.no_gc
@cython.freelist(4)
cdef class Rfq:
    cdef public object rfq_id, trader, market, is_long, size_e6, leverage, max_rate_e9, duration_ns, expires_ns
    cdef public object margin_e6, fee_e6, auto_accept, target_rate_e9
    cdef public dict quotes


cdef class Oracle:
    cdef public list price_e8, conf_e8, publish_ns, source, twap_e8


@cython.final  # no subclass: its cpdef methods (free_of, rfq_state, ...) are direct C calls
cdef class State:
    cdef public structs.EngineConfig config
    cdef public object last_seq, last_checkpoint_seq
    cdef public Table agents
    cdef public dict agent_row, rfqs, quotes
    cdef public list agent_keys
    cdef public dict closed_rfqs
    cdef public object next_rfq_id, next_quote_id
    # The ring of closed RFQs: typed, so remembering one is three C stores (read from Python,
    # each column is a new memoryview: np.asarray for numpy's operations).
    cdef public int64_t[:] closed_rfq_ids
    cdef public int8_t[:] closed_rfq_ends
    cdef public Py_ssize_t closed_rfq_next
    cdef public Table positions
    cdef public dict position_row, flagged
    cdef public object fixed_duration_open, opened_ns_low, next_position_id
    cdef public Oracle oracle
    cdef public object funding_boundary_ns
    cdef public list safe_low_e8, safe_high_e8
    cdef public object fees_e6, insurance_e6, external_e6, bad_debt_e6, deposited_e6, withdrawn_e6
    cdef public dict deposit_refs, client_ids, open_rfqs_of, live_quotes_of
    cdef public object client_id_order
    cpdef rfq_state(self, rfq_id)
    cpdef quote_state(self, quote_id)
    cpdef remember_closed_rfq(self, rfq_id, ended)
    cpdef free_of(self, agent)
    cpdef agent_index(self, agent)
