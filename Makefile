# Sellerdesk developer commands. Everything installs into ./.venv from the pinned lock files;
# a fresh machine needs only Python >= 3.11 and make.
PYTHON ?= python3
UV_VERSION := 0.13.9
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
XDIST ?= 3

.PHONY: run test test-fast lint types unit unit-fast fuzz install lock migrate clean bench-sync bench-inbox bench-dispatch

run: install ## everything up: embedded Postgres/Redis unless URLs are given, migrations, API, worker, beat
	$(PY) -m app.cli run

test: lint types unit ## lint, types, all tests

test-fast: lint types unit-fast ## lint, types and the tests not marked slow or multiprocess, in parallel (< 60 s)

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

types: install
	$(PY) -m mypy app bench

unit: install
	$(PY) -m pytest $(PYTEST_ARGS)

unit-fast: install ## XDIST=N pytest-xdist workers (3: the tests wait on Postgres as much as they compute)
	$(PY) -m pytest -n $(XDIST) -m 'not slow and not multiprocess' $(PYTEST_ARGS)

fuzz: install ## the API fuzz (schemathesis) with fresh random inputs, 300 examples an operation
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-300} FUZZ_RANDOM=1 $(PY) -m pytest tests/fuzz $(PYTEST_ARGS)

install: $(VENV)/.installed

$(VENV)/.installed: requirements-dev.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip --version >/dev/null 2>&1 || $(PY) -m ensurepip --upgrade
	@$(UV) --version 2>/dev/null | grep -q "$(UV_VERSION)" || $(PY) -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(UV) pip sync --quiet --python $(PY) requirements-dev.lock
	@touch $@

lock: install ## re-resolve the lock files after editing pyproject.toml
	$(UV) pip compile --quiet --python-version 3.11 pyproject.toml -o requirements.lock
	$(UV) pip compile --quiet --python-version 3.11 --extra dev pyproject.toml -o requirements-dev.lock

bench-sync: install ## sync benchmark (embedded Postgres/Redis unless BENCH_DATABASE_URL / BENCH_REDIS_URL)
	$(PY) -m bench.sync_bench $(BENCH_ARGS)

bench-inbox: install ## inbox API latency on 1M interactions (p50/p95/p99 at concurrency 8, EXPLAIN ANALYZE)
	$(PY) -m bench.inbox_bench $(BENCH_ARGS)

bench-dispatch: install ## reply endpoint latency (p50/p95/p99 at concurrency 8) and dispatch throughput, limits off
	$(PY) -m bench.dispatch_bench $(BENCH_ARGS)

migrate: install
	$(PY) -m app.cli migrate

clean:
	rm -rf $(VENV) .data .mypy_cache .ruff_cache .pytest_cache .hypothesis
