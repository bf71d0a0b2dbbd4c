# Cython declarations augmenting lifecycles.py in the compiled engine (as engine/apply.pxd):
# a Lifecycle is an extension type, so that a module declaring its tables as ``Lifecycle``
# (apply.pxd) calls ``next`` through a C call. Every value stays a Python object.

cdef class Lifecycle:
    cdef public object name
    cdef public dict table
    cpdef next(self, state, happened, subject_id)
