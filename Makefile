# Longform: `make demo` renders a video offline, `make test` runs every test.
# Both set up functions/venv (where firebase-tools expects a Python codebase's venv) on first use.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := functions/venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-unit test-integration test-e2e check bench clean

setup: $(STAMP)

$(STAMP): functions/requirements.txt requirements-dev.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r functions/requirements.txt -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

demo: $(STAMP)
	$(PY) -m longform generate --prompts-file demo/scenes.txt --out out/demo.mp4

test: $(STAMP)
	$(PY) -m pytest

test-unit: $(STAMP)
	$(PY) -m pytest tests/unit

test-integration: $(STAMP)
	$(PY) -m pytest tests/integration

test-e2e: $(STAMP)
	$(PY) -m pytest tests/e2e

check: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

bench: $(STAMP)
	$(PY) bench/run.py

clean:
	rm -rf .longform out test-output .pytest_cache .ruff_cache .mypy_cache
