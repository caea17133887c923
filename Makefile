# Everything a fresh machine needs: Python 3.11 and this file. Each target builds the virtual
# environment from the pinned files first (once; again when they change).
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench bench-memory dev checkov clean

$(STAMP): pyproject.toml requirements.lock
	@command -v $(PY) >/dev/null 2>&1 || { echo "need $(PY) on PATH (set PY=...)"; exit 1; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -c requirements.lock -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m emulators.demo $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy shared services emulators

# The embedded run's lists against the API floor (both sources), then the fleet on the local cloud (three
# fetcher processes sharing one key). Figures, not tests: docs/benchmarks.md.
bench: $(STAMP)
	$(BIN)/python -m bench.throughput $(ARGS)
	$(BIN)/python -m bench.fleet

# Peak memory of the embedded run: a whale after 108 wallets, a 1,000,000-trade wallet, a small one.
bench-memory: $(STAMP)
	$(BIN)/python -m bench.memory $(ARGS)

# The three services on the local emulators and the Dome simulator (docs/local-cloud.md); Ctrl-C stops all.
dev: $(STAMP)
	$(BIN)/python -m emulators.dev $(ARGS)

# checkov's report on infra/terraform. It runs from its own virtual environment in .cache/checkov/ (its
# dependencies clash with the project's pins), built from tests/infra/checkov.lock on first use; make
# test runs the same scan (tests/infra/test_checkov.py) and fails on any failed check.
checkov: $(STAMP)
	$(BIN)/python -m tests.infra.checkov_env

clean:
	rm -rf $(VENV) .demo .cache/checkov
