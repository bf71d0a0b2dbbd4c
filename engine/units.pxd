# Cython declarations augmenting units.py in the compiled engine (as engine/apply.pxd): the
# integer helpers are cpdef so that compiled callers that cimport them make a C call. Their
# arguments stay Python objects (Python ints: exact, never overflowing).

cpdef div_half_even(numerator, denominator)
cpdef div_ceil(numerator, denominator)
