"""Test-wide set-up: a numba cache keyed on the kernels' sources, and the compiled engine
only when it is fresh (see venue/compiled.py)."""

from venue import compiled

compiled.prepare()
