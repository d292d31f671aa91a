# OneEye — `make install`, `make test`, `make lint`, `make diagrams`.
# Everything installs into .venv; dlib comes from the prebuilt dlib-bin wheel.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test test-fast lint diagrams docs clean

install: $(STAMP)

$(STAMP): pyproject.toml scripts/install.sh
	@bash scripts/install.sh
	@touch $(STAMP)

test: install
	@bash scripts/ensure-apt.sh chromium chromium
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest -m "not slow"

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy oneeye dashboard
	$(VENV)/bin/lint-imports --no-logo  # the layer contracts in .importlinter

diagrams: install
	@bash scripts/ensure-apt.sh graphviz dot
	$(PY) diagrams/render.py

docs: install
	$(PY) scripts/gen_docs.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist
