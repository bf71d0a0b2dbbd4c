# Cython declarations augmenting context.py in the compiled engine (as engine/state.pxd): Ctx
# is an extension type, its stamps slots; every value stays a Python object.

cimport cython


# A new Ctx for every command: kept on a free list rather than allocated each time; final (no
# subclass), so ``seq`` is a direct C call.
@cython.final
@cython.freelist(4)
cdef class Ctx:
    cdef public object ts_ns, cmd_id, next_seq
    cpdef seq(self)


cpdef transfer(list out, debit, debit_ref, credit, credit_ref, amount_e6, kind)
