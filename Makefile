# The two set-up commands are `make run` and `make test`; both bootstrap .venv themselves (and
# compile src/ to bytecode, as installing a wheel does).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: fuzz run test test-unit test-integration check fmt lint typecheck bench clean deps

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	$(BIN)/python -m compileall -q src
	touch $(STAMP)

deps:
	@bash scripts/ensure-tools.sh

run: $(STAMP)
	$(BIN)/plextuner demo

test: $(STAMP) deps
	$(BIN)/python -m pytest -q

test-unit: $(STAMP)
	$(BIN)/python -m pytest -q -m "not integration"

test-integration: $(STAMP) deps
	$(BIN)/python -m pytest -q -m integration

fmt: $(STAMP)
	$(BIN)/ruff format src tests bench scripts

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts

typecheck: $(STAMP)
	$(BIN)/mypy
	$(BIN)/lint-imports

check: $(STAMP) deps
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

# Bytecode compiled first, as a wheel install does: an editable install under
# PYTHONDONTWRITEBYTECODE (as here) recompiles every module on each `plextuner` start (0.16 s).
bench: $(STAMP) deps
	@bash scripts/ensure-tools.sh bench
	$(BIN)/python -m compileall -q src
	$(BIN)/python -m bench

fuzz: $(STAMP) deps
	FUZZ_EXAMPLES=5000 $(BIN)/python -m pytest -q --timeout=1800 tests/unit/test_fuzz.py tests/integration/test_fuzz_live.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
