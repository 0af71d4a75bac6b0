# The two commands of the README: `make demo` and `make test`. Each installs what it needs.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
PG_TEST_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
export PIESTUDY_PORT ?= 8000
# Python keeps compiled modules (__pycache__) unless told not to. Where the environment says
# PYTHONDONTWRITEBYTECODE, every process compiled torch, SQLAlchemy and the rest from source each
# time it started (30 s of CPU for a test worker, again for each worker process and server a test
# starts): the first process now writes them, the others read them.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: demo test install warm lint typecheck test-sqlite test-postgres serve clean

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

# mypy's cache lives outside the checkout, so a fresh clone on this machine (CI's) starts warm:
# 72 s cold, 3 s warm. It checks every file's hash, so a warm cache never hides an error.
MYPY_CACHE_DIR ?= $(HOME)/.cache/piestudy/mypy
export MYPY_CACHE_DIR

typecheck: install
	$(UV) run mypy backend ml migrations tests

# Tests run in parallel, a database for each worker (pytest-xdist; PYTEST_WORKERS=1 runs them
# one at a time). More workers than the machine's two cores, as many tests wait on subprocesses,
# a browser or a lease for much of their time; one torch thread each, as torch's threads spin
# and slow each other down many times over when there are more of them than cores. Tests go
# out one at a time (--maxschedchunk 1), the longest first (tests/conftest.py).
PYTEST_WORKERS ?= 3
PYTEST := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(UV) run pytest -p no:cacheprovider \
	-n $(PYTEST_WORKERS) --maxschedchunk 1 --durations=15

# One process imports what the tests import before the workers start, so that a fresh
# environment's bytecode is compiled once, not by every worker at the same time.
warm: install
	$(UV) run python -c "import torch, torchvision, sklearn, pandas, matplotlib.pyplot, statsmodels.api, schemathesis, playwright.sync_api, backend.main, backend.cli, ml.analysis.report, ml.train"

test-sqlite: warm
	$(PYTEST) -m "not postgres"

# The tests whose behaviour depends on the database (marked `database`: transactions, locks,
# claims, concurrent writes, every repository's queries through the API and the authorization
# matrix), and those that need PostgreSQL, again on PostgreSQL (a fresh database per worker,
# created next to PG_TEST_URL's). The rest (the engine, pages, pure statistics, the browser)
# behave the same whatever the database, and ran in the SQLite pass.
test-postgres: warm
	PIESTUDY_TEST_DATABASE_URL=$(PG_TEST_URL) $(PYTEST) -m "database or postgres" tests/backend

test: lint typecheck test-sqlite test-postgres

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
