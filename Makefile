# Everything a fresh machine needs: `make demo` and `make test` create .venv and install first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tier2 demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

# The store tests also run on a real PostgreSQL, and the SLA due times are checked against a
# real Request Tracker 5: scripts/test-postgres.sh and scripts/test-rt.sh install them (as
# root) from Debian's packages, start them on loopback and print their URLs; without them
# those tests are skipped (and fail under CI=true). Each test has its own time limit
# (pytest-timeout) and the whole suite one of 50 minutes, so a hang fails instead of waiting.
test: $(STAMP) lint typecheck
	TIER2_TEST_POSTGRES_URL="$${TIER2_TEST_POSTGRES_URL:-$$(scripts/test-postgres.sh || true)}" \
	TIER2_TEST_RT_URL="$${TIER2_TEST_RT_URL:-$$(scripts/test-rt.sh $(BIN)/python || true)}" \
	timeout --signal=INT --kill-after=60 3000 $(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/decide.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
