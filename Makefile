# Two entry points for a newcomer: `make demo` and `make test`. Each builds what it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
MSVENV := .venv-modelserver
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck contracts unit venv modelserver system-deps clean bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

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

unit: venv system-deps modelserver
	AKSFLIGHT_MODELSERVER_VENV=$(abspath $(MSVENV)) $(BIN)/pytest -q

test: lint typecheck contracts unit

bench: venv system-deps
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) $(MSVENV) build *.egg-info .mypy_cache .pytest_cache .ruff_cache
