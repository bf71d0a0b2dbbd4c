"""Test-wide set-up: a numba cache keyed on the kernels' sources, and the compiled engine
only when it is fresh (see ledger/compiled.py)."""

from ledger import compiled

compiled.prepare()
