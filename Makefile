# Two entry points for a newcomer: `make demo` and `make test`. Each builds what it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
MSVENV := .venv-modelserver
STAMP  := $(VENV)/.installed
# The router's data plane, compiled with mypyc by setup.py (router/native.py), which
# writes this record of the router's sources.
NATIVE := router/native-build.json

.PHONY: demo test lint typecheck contracts unit venv native modelserver system-deps clean bench

# Dependencies first, as plain Python; the next rule compiles the router's data plane.
$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	AKSFLIGHT_ROUTER_PURE=1 $(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

# Compiled again when a source of the router changed; until then the router runs as plain
# Python (router/native.py).
$(NATIVE): $(STAMP) setup.py $(wildcard router/*.py) | system-deps
	env -u AKSFLIGHT_ROUTER_PURE $(BIN)/pip install -q --no-deps -e .

native: $(NATIVE)

venv: $(STAMP) $(NATIVE)

$(MSVENV)/.installed: requirements-modelserver.txt
	$(PYTHON) -m venv $(MSVENV)
	$(MSVENV)/bin/pip install -q --upgrade pip
	$(MSVENV)/bin/pip install -q -r requirements-modelserver.txt
	touch $@

modelserver: $(MSVENV)/.installed

system-deps:
	bash scripts/system-deps.sh

demo: venv system-deps modelserver
	AKSFLIGHT_MODELSERVER_VENV=$(abspath $(MSVENV)) $(BIN)/aksflight demo

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy
	MYPYPATH=tests/support $(BIN)/mypy -p fakekube

contracts: venv
	$(BIN)/lint-imports

# The data plane's own tests once more on its plain-Python build (router/native.py).
PURE_TESTS := tests/router/test_router_fastpath.py tests/router/test_router_proxy.py \
              tests/router/test_router_http11.py tests/router/test_router_units.py

unit: venv system-deps modelserver
	AKSFLIGHT_MODELSERVER_VENV=$(abspath $(MSVENV)) $(BIN)/pytest -q
	AKSFLIGHT_ROUTER_PURE=1 $(BIN)/pytest -q $(PURE_TESTS)

test: lint typecheck contracts unit

bench: venv system-deps
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) $(MSVENV) build *.egg-info .mypy_cache .pytest_cache .ruff_cache
	rm -f router/*.so router_native__mypyc*.so $(NATIVE)
