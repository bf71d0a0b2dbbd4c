# The two commands a new user runs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run native test test-jit test-nojit bench clean dashboard-assets

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	# dask wants toolz >= 0.12, anchorpy declares < 0.12 (and runs with 1.x): pip warns, on purpose
	$(BIN)/pip install --quiet 'dask[distributed]==2026.8.0' 'distributed==2026.8.0' 'toolz==1.2.0'
	touch $(STAMP)

run: native dashboard-assets
	$(BIN)/agentperp escrow build
	$(BIN)/agentperp run

# The dashboard's chart library (TradingView lightweight-charts), pinned, fetched from npm by
# `npm pack` and checked against the registry's sha512 before its one file is unpacked into a
# gitignored folder. Without npm the dashboard still runs, with charts off (it says so).
LWC_VERSION := 5.2.1
LWC_SHA512 := IVwoK1RLFiLPubaKIjNbtjWLnpPMqiABSrTay6whmNa8L1+19292VtHJ+BWyPUuLCwF0tcQlhEWd1CLB2a1nsQ==
LWC_DIR := adapters/dashboard/static/vendor
LWC_JS := $(LWC_DIR)/lightweight-charts.standalone.production.js

dashboard-assets: $(LWC_JS)

$(LWC_JS):
	@if ! command -v npm >/dev/null; then echo "npm not found: the dashboard runs with charts off"; exit 0; fi; \
	set -e; mkdir -p $(LWC_DIR)/.pack; cd $(LWC_DIR)/.pack; rm -f lightweight-charts-*.tgz; \
	npm pack --silent lightweight-charts@$(LWC_VERSION) >/dev/null; \
	got=$$(openssl dgst -sha512 -binary lightweight-charts-$(LWC_VERSION).tgz | base64 -w0); \
	if [ "$$got" != "$(LWC_SHA512)" ]; then echo "lightweight-charts $(LWC_VERSION): sha512 mismatch ($$got)"; exit 1; fi; \
	tar -xzf lightweight-charts-$(LWC_VERSION).tgz package/dist/lightweight-charts.standalone.production.js package/LICENSE; \
	mv package/LICENSE ../LICENSE.lightweight-charts; \
	mv package/dist/lightweight-charts.standalone.production.js ../lightweight-charts.standalone.production.js; \
	cd ..; rm -rf .pack

# The engine's hot modules compiled by Cython, in place; only what changed is rebuilt.
native: $(STAMP)
	PYTHONWARNINGS=ignore $(BIN)/python setup.py --quiet build_ext --inplace

# The suite runs twice: the compiled engine and kernels, then everything interpreted
# (AGENTPERP_ENGINE=python, NUMBA_DISABLE_JIT=1), so the Python sources the compiled code
# comes from — the engine's modules and the kernels' twins — are exercised as well.
test: test-jit test-nojit

test-jit: native dashboard-assets
	$(BIN)/agentperp escrow build
	$(BIN)/pytest

test-nojit: $(STAMP)
	AGENTPERP_ENGINE=python NUMBA_DISABLE_JIT=1 $(BIN)/pytest -m "not slow"

bench: native
	$(BIN)/agentperp bench engine --json benchmarks/results/engine.json

clean:
	rm -rf $(VENV) data build *.egg-info
	find engine -name '*.so' -delete
