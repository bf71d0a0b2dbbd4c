# Cython declarations augmenting lifecycles.py in the compiled engine (as engine/apply.pxd):
# a Lifecycle is an extension type, so that a module declaring its tables as ``Lifecycle``
# (apply.pxd) calls ``next`` through a C call. Every value stays a Python object.
cimport cython


@cython.final  # no subclass: next is a direct C call
cdef class Lifecycle:
    cdef public object name
    cdef public dict table
    @cython.locals(transitions=dict)
    cpdef next(self, state, happened, subject_id)


cdef dict _NONE  # a C global: read without a lookup in the module's dict
