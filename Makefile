# Two commands on a fresh machine:  `make demo` (the main job) and `make test` (the test suite).
# Both install what they need first: Debian packages, a Python venv, Kafka's jars (via `salesflow dev up`).

VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: setup demo test test-unit test-integration stack-up stack-down schemas lint clean bench docs docs-serve nemesis

setup: $(VENV)/.installed
	@bash scripts/install-system-deps.sh

# Then Quix Streams (bench-only) without its declared dependencies: its confluent-kafka range excludes
# our pin (bench/requirements-quix.txt says why and lists what it imports).
$(VENV)/.installed: pyproject.toml bench/requirements-quix.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-deps -r bench/requirements-quix.txt
	@touch $@

demo: setup
	$(BIN)/salesflow demo

# The suite mostly waits on brokers, databases and timeouts: two processes (pytest-xdist), a module at
# a time on each (--dist loadscope), so a module's worker processes are built once.
TEST_PROCESSES ?= 2
test: setup
	$(BIN)/pytest -n $(TEST_PROCESSES) --dist loadscope $(PYTEST_ARGS)

test-unit: setup
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

test-integration: setup
	$(BIN)/pytest tests/integration $(PYTEST_ARGS)

# The benchmark (bench/README.md): starts the local stack if needed; reports in bench/results/.
# BENCH_ARGS="--events 50000 --repeats 1" for a shorter run, "--smoke" for the CI-sized one.
BENCH_ARGS ?=
bench: setup
	$(BIN)/python -m bench $(BENCH_ARGS)

# The nemesis (docs/operations/reliability.md): random faults of every kind under load on a stack of
# its own, then an exact check. DURATION in seconds, SEED replays a run's faults; KINDS=sigkill,net-cut
# narrows them. Nice'd: it shares the machine. Network faults need Go (Toxiproxy is built on first use).
DURATION ?= 600
SEED ?= 1
RATE ?= 50
KINDS ?=
nemesis: setup
	nice -n 10 $(BIN)/python -m tests.faults.nemesis --duration $(DURATION) --seed $(SEED) --rate $(RATE) \
		--kinds "$(KINDS)" --out nemesis-results

# The lint gate (CI runs it before the tests): mypy --strict, ruff's rules, ruff's formatting, the import
# direction (import-linter's contracts in pyproject.toml), dead code (vulture; what only frameworks call
# is named in vulture_allowlist.py), the contract's released schemas (a change that breaks one, either
# way, is refused: docs/how-to/change-a-payload.md), and the docs site.
lint: setup
	$(BIN)/mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/vulture services bench examples vulture_allowlist.py --min-confidence 60 \
		--exclude 'services/salesflow/db/migrations,services/salesflow/outbox/migrations,examples/*/migrations'
	$(BIN)/salesflow schemas check
	$(MAKE) docs

# The documentation site (mkdocs.yml): built strict, so a broken link, an orphan page or a reference
# page that no longer generates fails it (lint runs it too). Generated pages come from docsgen/.
DOCS_ENV := NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true
docs: setup
	@bash scripts/fetch-docs-assets.sh
	$(DOCS_ENV) $(BIN)/mkdocs build --strict --quiet

docs-serve: setup
	@bash scripts/fetch-docs-assets.sh
	$(DOCS_ENV) $(BIN)/mkdocs serve --strict

stack-up: setup
	$(BIN)/salesflow dev up

stack-down:
	$(BIN)/salesflow dev down

# Writes the schema file of each new payload version; a released file is never rewritten.
schemas: setup
	$(BIN)/salesflow schemas write

clean:
	rm -rf $(VENV) .pytest_cache site .cache
