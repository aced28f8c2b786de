# Quick start: `make demo` and `make test` on a machine with only Python.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP_BASE := $(VENV)/.installed-base
STAMP_TEST := $(VENV)/.installed-test

.PHONY: demo test lint bench dist-check clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP_BASE): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[cli]"
	touch $@

$(STAMP_TEST): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]" "torch==2.13.0"
	touch $@ $(STAMP_BASE)

demo: $(STAMP_BASE)
	$(BIN)/segaudit demo --out demo_out

test: lint
	$(BIN)/python -m pytest

lint: $(STAMP_TEST)
	$(BIN)/python -m ruff check src tests $(wildcard benchmarks)
	$(BIN)/python -m ruff format --check src tests $(wildcard benchmarks)
	$(BIN)/python -m mypy

bench: $(STAMP_TEST)
	$(BIN)/python benchmarks/bench_core.py

# Build the wheel and sdist, install the wheel into a fresh venv, run the demo from it.
dist-check: $(STAMP_TEST)
	rm -rf dist .dist-venv .dist-demo
	$(BIN)/python -m build --no-isolation --outdir dist .
	$(PYTHON) -m venv .dist-venv
	.dist-venv/bin/python -m pip install --quiet "$$(ls dist/segaudit-*.whl)[cli]"
	cd /tmp && $(CURDIR)/.dist-venv/bin/segaudit demo --out $(CURDIR)/.dist-demo
	test -s .dist-demo/scan/images.csv
	tar -tzf dist/segaudit-*.tar.gz | grep -q "segaudit-.*/src/segaudit/filter.py"

clean:
	rm -rf $(VENV) demo_out .pytest_cache .ruff_cache dist .dist-venv .dist-demo
