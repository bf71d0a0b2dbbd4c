# The two commands a new user runs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-jit test-nojit bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/agentperp run

# The suite runs twice: compiled kernels, then NUMBA_DISABLE_JIT=1 so the pure-Python
# semantics of every kernel are exercised without compilation.
test: test-jit test-nojit

test-jit: $(STAMP)
	$(BIN)/agentperp escrow build
	$(BIN)/pytest

test-nojit: $(STAMP)
	NUMBA_DISABLE_JIT=1 $(BIN)/pytest -m "not slow"

bench: $(STAMP)
	$(BIN)/agentperp bench engine --json benchmarks/results/engine.json

clean:
	rm -rf $(VENV) data build *.egg-info
