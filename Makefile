# The two commands of the README: `make demo` and `make test`. Each installs what it needs.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
PG_TEST_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
export PIESTUDY_PORT ?= 8000

.PHONY: demo test install lint typecheck test-sqlite test-postgres serve clean

install:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --frozen --all-extras

# The demo: synthetic data, a trained and pruned population, its PIEs, a 6-reader study; then
# the server (PIESTUDY_PORT, 8000 by default). A second run reuses what exists.
demo: install
	$(UV) run piestudy demo

lint: install
	$(UV) run ruff check .
	$(UV) run ruff format --check .

typecheck: install
	$(UV) run mypy backend ml migrations tests

test-sqlite: install
	$(UV) run pytest -m "not postgres" -p no:cacheprovider

# Every test that touches a database, again on PostgreSQL (a fresh database is created next to
# PG_TEST_URL's). tests/ml never opens a database, and the browser tests (tests/e2e, run in the
# SQLite pass) exercise the pages, not the database, so running them twice would prove nothing.
test-postgres: install
	PIESTUDY_TEST_DATABASE_URL=$(PG_TEST_URL) $(UV) run pytest -p no:cacheprovider --ignore=tests/ml --ignore=tests/e2e

test: lint typecheck test-sqlite test-postgres

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
