# The two commands a newcomer runs (README): `make demo` and `make test`.
# Each creates the virtual environment it needs on first use.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: demo test lint format clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The local pipeline on the sample documents, against the embedded AWS endpoint.
demo: $(STAMP)
	$(BIN)/pagedrop local --process samples --out pagedrop-out

# Lint and type-check, then the whole test suite (unit and integration; no GPU, no network).
test: $(STAMP)
	$(BIN)/ruff check handler tests scripts
	$(BIN)/ruff format --check handler tests scripts
	$(BIN)/mypy handler
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check handler tests scripts
	$(BIN)/mypy handler

format: $(STAMP)
	$(BIN)/ruff format handler tests scripts
	$(BIN)/ruff check --fix handler tests scripts

clean:
	rm -rf $(VENV) pagedrop-out .pytest_cache .ruff_cache .mypy_cache
