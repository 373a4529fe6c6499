# Everything a fresh machine needs: Python 3.11, pip, gcc, git. The venv lives in .venv.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck unit integration schemas bench clean chaos

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/handoff demo $(DEMO_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check handoff tests benchmarks
	$(BIN)/ruff format --check handoff tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q -m 'not integration' -p no:cacheprovider

integration: $(STAMP)
	$(BIN)/pytest -q -m 'integration and not slow' -p no:cacheprovider

test: lint typecheck $(STAMP)
	$(BIN)/pytest -q -m 'not slow' -p no:cacheprovider

schemas: $(STAMP)
	$(BIN)/python -m handoff.streams.schema_export schemas

# Crashes, rebalances and vendor faults end to end; one line of figures (CHAOS_ARGS=--help).
chaos: $(STAMP)
	$(BIN)/python -m handoff.chaos $(CHAOS_ARGS)

bench: $(STAMP)
	$(BIN)/python -c 'import quixstreams' 2>/dev/null || $(BIN)/pip install -q -e '.[dev,bench]'
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
