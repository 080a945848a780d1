# Herald: two commands do all set-up on a fresh machine.
#   make run    install, migrate, load the demo tenant, serve (embedded SQLite + in-process broker)
#   make test   install (incl. Debian chromium for the browser test), run every test
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup run test test-fast bench bench-smoke lint browser-deps clean constraints

$(STAMP): pyproject.toml constraints.txt
	@echo "==> creating $(VENV) with $(PYTHON)"
	$(PYTHON) -c 'import sys; assert (3, 11) <= sys.version_info[:2] < (3, 13), "Herald needs Python 3.11 or 3.12 (durable_rules does not build on 3.13)"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@echo "==> installing Herald and its test tools (durable_rules compiles C: ~1 min)"
	$(BIN)/pip install --quiet --progress-bar off -c constraints.txt -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(BIN)/herald migrate
	$(BIN)/herald demo --serve

browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "==> installing Debian chromium for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || { echo "could not install chromium: run 'apt-get install chromium' as root" >&2; exit 1; }; }

# Two test processes (pytest-xdist), a test file each at a time: most end-to-end tests wait
# on timers, not on the CPU (decision "Two test processes"). PYTEST_WORKERS=0 runs in one.
PYTEST_WORKERS ?= 2
XDIST := $(if $(filter 0,$(PYTEST_WORKERS)),-p no:xdist,-n $(PYTEST_WORKERS) --dist loadfile)

test: setup browser-deps
	$(BIN)/python -m pytest -p no:cacheprovider $(XDIST) $(PYTEST_ARGS)

test-fast: setup
	$(BIN)/python -m pytest -p no:cacheprovider $(XDIST) -m "not slow and not browser" $(PYTEST_ARGS)

# make bench: every workload of issue #8 with its peers (django-notifications-hq, apprise:
# the `bench` extra, kept out of Herald's own dependencies), ~20 min; results in
# bench/results/latest.json. make bench-smoke: tiny sizes, checks the command works (< 90 s).
BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP) pyproject.toml
	@echo "==> installing the bench extra (peers: Django 4.2, django-notifications-hq, apprise)"
	$(BIN)/pip install --quiet --progress-bar off -c constraints.txt -e '.[test,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

bench-smoke: $(BENCH_STAMP)
	$(BIN)/python -m bench --smoke $(BENCH_ARGS)

# lint: ruff, mypy and the layer contracts of .importlinter (docs/architecture.md)
lint: setup
	$(BIN)/ruff check router channels workers tests bench
	$(BIN)/mypy router channels workers
	$(BIN)/lint-imports --no-cache --no-logo

# Pin what just passed: upgrade the venv (pip install -U ...), run make test, then this.
constraints: setup
	{ echo "# Exact versions the test suite last passed with (make setup installs with -c constraints.txt)."; \
	  echo "# Regenerate after an upgrade that passes make test: make constraints"; \
	  $(BIN)/pip freeze --exclude-editable; } > constraints.txt

clean:
	rm -rf $(VENV) herald.db herald.db-* .pytest_cache
