"""Test-wide set-up: a numba cache keyed on the kernels' sources (see venue/numba_cache.py)."""

from venue import numba_cache

numba_cache.configure()
