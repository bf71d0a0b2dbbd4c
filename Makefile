# The two commands a new user runs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run native test test-jit test-nojit bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	# dask wants toolz >= 0.12, anchorpy declares < 0.12 (and runs with 1.x): pip warns, on purpose
	$(BIN)/pip install --quiet 'dask[distributed]==2026.8.0' 'distributed==2026.8.0' 'toolz==1.2.0'
	touch $(STAMP)

run: native
	$(BIN)/agentperp run

# The engine's hot modules compiled by Cython, in place; only what changed is rebuilt.
native: $(STAMP)
	PYTHONWARNINGS=ignore $(BIN)/python setup.py --quiet build_ext --inplace

# The suite runs twice: the compiled engine and kernels, then everything interpreted
# (AGENTPERP_ENGINE=python, NUMBA_DISABLE_JIT=1), so the Python sources the compiled code
# comes from — the engine's modules and the kernels' twins — are exercised as well.
test: test-jit test-nojit

test-jit: native
	$(BIN)/agentperp escrow build
	$(BIN)/pytest

test-nojit: $(STAMP)
	AGENTPERP_ENGINE=python NUMBA_DISABLE_JIT=1 $(BIN)/pytest -m "not slow"

bench: native
	$(BIN)/agentperp bench engine --json benchmarks/results/engine.json

clean:
	rm -rf $(VENV) data build *.egg-info
	find engine -name '*.so' -delete
