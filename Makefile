# Developer entry points. `make run` and `make test` install what they need on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 0.0.0.0
PORT ?= 8000
APP_WS_PORT ?= 9000
PG_URL ?= postgres://postgres@127.0.0.1:5432/tenantkit
REDIS_TEST_URL ?= redis://127.0.0.1:6379/15

.PHONY: install run test test-postgres test-postgres-cov test-pgbouncer lint format migrations-check clean bench bench-quick

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## Serve the API on the embedded default (SQLite, in-memory channel layer) with a demo tenant.
run: $(STAMP)
	$(BIN)/python manage.py migrate --verbosity 0
	TENANT_DEFAULT=$${TENANT_DEFAULT-acme} $(BIN)/python manage.py seed_demo
	TENANT_DEFAULT=$${TENANT_DEFAULT-acme} $(BIN)/daphne \
		-e tcp:port=$(PORT):interface=$(HOST) -e tcp:port=$(APP_WS_PORT):interface=$(HOST) \
		config.asgi:application

## Run the whole test suite (embedded default unless DATABASE_URL / REDIS_URL are set).
test: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

## The same suite on PostgreSQL and Redis (local servers, see PG_URL / REDIS_TEST_URL).
test-postgres: $(STAMP)
	DATABASE_URL=$(PG_URL) REDIS_URL=$(REDIS_TEST_URL) $(BIN)/pytest $(PYTEST_ARGS)

## The PostgreSQL + Redis run with line and branch coverage; fails below 85 % (pyproject).
test-postgres-cov: $(STAMP)
	DATABASE_URL=$(PG_URL) REDIS_URL=$(REDIS_TEST_URL) $(BIN)/pytest --cov --cov-branch \
		--cov-report=term --cov-fail-under=85 $(PYTEST_ARGS)

## The suite on PostgreSQL + Redis with tenant databases behind PgBouncer (Debian's
## pgbouncer): tests/pgbouncer.py starts the poolers and a second PostgreSQL server before
## the settings load; the main database stays direct. PGBOUNCER_TESTS picks the modules.
PGBOUNCER_TESTS ?=
test-pgbouncer: $(STAMP)
	TENANTKIT_PGBOUNCER=1 DATABASE_URL=$(PG_URL) REDIS_URL=$(REDIS_TEST_URL) \
		$(BIN)/python -m pytest -p tests.pgbouncer $(PGBOUNCER_TESTS) $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

migrations-check: $(STAMP)
	$(BIN)/python manage.py makemigrations --check --dry-run

## The OpenAPI schema builds, validates and raises no warning (drf-spectacular).
.PHONY: openapi-check
openapi-check: $(STAMP)
	$(BIN)/python manage.py spectacular --validate --fail-on-warn --file /dev/null

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache

## Benchmarks on PostgreSQL + Redis (bench/README.md); results in bench/results/latest.md.
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/pip install --quiet -e ".[dev,bench]"
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

bench-quick: $(BENCH_STAMP)
	$(BIN)/python -m bench.run --quick $(BENCH_ARGS)
