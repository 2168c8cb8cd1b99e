# Two commands on a fresh machine:  `make demo` (the main job) and `make test` (the test suite).
# Both install what they need first: Debian packages, a Python venv, Kafka's jars (via `salesflow dev up`).

VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: setup demo test test-unit test-integration stack-up stack-down schemas lint clean bench

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

# The lint gate (CI runs it before the tests): mypy --strict, ruff's rules, ruff's formatting.
lint: setup
	$(BIN)/mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

stack-up: setup
	$(BIN)/salesflow dev up

stack-down:
	$(BIN)/salesflow dev down

schemas: setup
	$(BIN)/python -m salesflow.domain.schemas schemas

clean:
	rm -rf $(VENV) .pytest_cache
