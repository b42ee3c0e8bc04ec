# Longform: `make demo` renders a video offline, `make test` runs every test.
# Both set up functions/venv (where firebase-tools expects a Python codebase's venv) on first use.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := functions/venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo serve web browser emulators test test-emulators test-unit test-integration test-e2e test-browser check bench clean

setup: $(STAMP)

$(STAMP): functions/requirements.txt requirements-dev.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r functions/requirements.txt -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

demo: $(STAMP)
	$(PY) -m longform generate --prompts-file demo/scenes.txt --out out/demo.mp4

# The web page on http://127.0.0.1:8765/ against the embedded pipeline (local mode: no npm needed).
serve: $(STAMP)
	$(VENV)/bin/longform serve $(if $(PORT),--port $(PORT))

# Firebase mode only: the pinned SDK's browser modules, copied where index.html's import map looks;
# web/config.json and web/prices.json, written every time (the prices follow the functions' params).
FIREBASE_MODULES := app app-check auth firestore functions
web: web/vendor/firebase/.copied
	$(PY) -m devtools.web_config

web/vendor/firebase/.copied: web/package.json web/package-lock.json Makefile $(STAMP)
	cd web && npm ci --silent --no-audit --no-fund
	mkdir -p web/vendor/firebase
	cp $(foreach m,$(FIREBASE_MODULES),web/node_modules/firebase/firebase-$(m).js) web/vendor/firebase/
	@touch $@

# Debian's Chromium for the browser tests (Playwright drives it; it downloads no browser).
# As root it installs Debian's package; otherwise it says what to install (or LONGFORM_CHROMIUM=path).
browser:
	@if [ -n "$$LONGFORM_CHROMIUM" ] || command -v chromium >/dev/null; then exit 0; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update && apt-get install -y chromium; \
	else echo "The browser tests need Chromium: run 'sudo apt-get install chromium' (Debian/Ubuntu),"; \
	     echo "or set LONGFORM_CHROMIUM to a Chromium or Chrome binary; then run make test again."; exit 1; fi

# firebase-tools, pinned in package.json and package-lock.json, for `make emulators` and tests/emulators.
# Without npm the emulator tests skip (and fail under CI).
NODE_STAMP := node_modules/.installed
$(NODE_STAMP): package.json package-lock.json
	@if command -v npm >/dev/null; then npm ci --silent --no-audit --no-fund && touch $@; \
	else echo "npm not found: firebase-tools not installed, the emulator tests will skip"; fi

# The Firebase emulators (Functions, Firestore, Auth), the Cloud Storage emulator and the stand-ins
# for Veo, the Transcoder, OAuth and Inngest, all on 127.0.0.1; Ctrl-C (or kill) stops them all.
# EMULATOR_ARGS: --sleep-factor, --poll-seconds, --free-ports, --functions-port and the other ports (--help).
emulators: $(STAMP) $(NODE_STAMP)
	$(PY) -m devtools.emulator_suite $(EMULATOR_ARGS)

test-emulators: $(STAMP) $(NODE_STAMP)
	$(PY) -m pytest tests/emulators

# With npm, the tests also check the vendored Firebase SDK (make web); without it that test fails under CI.
WEB_FOR_TESTS := $(if $(shell command -v npm),web,)

test: $(STAMP) browser $(NODE_STAMP) $(WEB_FOR_TESTS)
	$(PY) -m pytest

test-unit: $(STAMP)
	$(PY) -m pytest tests/unit

test-integration: $(STAMP)
	$(PY) -m pytest tests/integration

test-e2e: $(STAMP)
	$(PY) -m pytest tests/e2e

test-browser: $(STAMP) browser
	$(PY) -m pytest tests/browser

check: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

# The bench also times `ffmpeg -f concat -c copy`, with the FFmpeg binary a pinned bench-only package ships.
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): bench/requirements.txt $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	@touch $@

bench: $(STAMP) $(BENCH_STAMP)
	$(PY) bench/run.py

# Also what an emulator suite that was killed (kill -9) left: its processes, functions/.env.local and
# .secret.local (the originals put back), and firebase-tools' logs from before they went to the suite's work dir.
clean:
	@if [ -x $(PY) ]; then $(PY) -m devtools.emulator_suite --recover; fi
	rm -rf .longform out test-output .pytest_cache .ruff_cache .mypy_cache
	rm -f *-debug.log functions/*-debug.log firebase.emulators-test.json
