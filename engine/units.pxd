# Cython declarations augmenting units.py in the compiled engine (as engine/apply.pxd): the
# integer helpers are cpdef so that compiled callers that cimport them make a C call.
#
# Their arguments are C 128-bit integers (GCC's ``__int128``), their results Python ints:
# with oracle.pxd's price arithmetic, the only C integer arithmetic of the compiled engine.
# Exact, as Python ints are, for every argument the engine can pass: the bounds of
# engine/units.py keep each product a caller makes below 2**100 (the largest,
# ``oracle.twap_after``'s price x window, below 2**92), far inside +-2**127; an argument
# beyond +-2**127 would raise OverflowError, never wrap. ``//`` and ``%`` keep Python's
# floor semantics (Cython's default, cdivision off), so the rounding is the .py's, bit for
# bit (tests/unit/test_units_compiled.py checks both against the Python definitions with
# hypothesis). ~3x faster than the same on Python ints, which allocate an object per step
# (docs/engine.md, "Compiled engine"). The arguments are ints, as the docstrings say (every
# caller's are): a float would be truncated.
cimport cython

cdef extern from *:
    ctypedef long long int128 "__int128"

@cython.locals(quotient=int128, remainder=int128, twice=int128)
cpdef div_half_even(int128 numerator, int128 denominator)
cpdef div_ceil(int128 numerator, int128 denominator)
