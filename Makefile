# The two commands a newcomer runs (README): `make demo` and `make test`.
# Each creates the virtual environment it needs on first use.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
BENCH_STAMP := $(VENV)/.installed-bench
TEST_STAMP := $(VENV)/.installed-test
LINTED := handler tests scripts bench

.PHONY: demo test lint format clean venv bench-quality

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The tests also run the GPU engines' code on the CPU (tiny models): torch (CPU build),
# transformers and paddleocr on top of the dev install (docs/gpu.md).
$(TEST_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,vlm,paddle]'
	touch $(TEST_STAMP)

# The benchmark's baselines (pymupdf4llm) on top of the dev install; `make test` needs none.
$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

# The local pipeline on the sample documents, against the embedded AWS endpoint.
demo: $(STAMP)
	$(BIN)/pagedrop local --process samples --out pagedrop-out

# Lint and type-check, then the whole test suite (unit and integration; no GPU, no network).
test: $(TEST_STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy handler
	$(BIN)/hadolint Dockerfile
	$(BIN)/shellcheck infra/*.sh
	./infra/check-template.sh
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/mypy handler
	$(BIN)/hadolint Dockerfile
	$(BIN)/shellcheck infra/*.sh

format: $(STAMP)
	$(BIN)/ruff format $(LINTED)
	$(BIN)/ruff check --fix $(LINTED)

# pagedrop against pymupdf4llm and plain rapidocr on ../shared/corpus (docs/quality.md).
# BENCH_ARGS passes options on, e.g. make bench-quality BENCH_ARGS="--markdown --repeat 2".
bench-quality: $(BENCH_STAMP)
	@$(BIN)/python bench/quality.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .venv-infra pagedrop-out .pytest_cache .ruff_cache .mypy_cache
