# Two commands set everything up on a fresh machine with Python 3.12+ and make:
#   make run    installs into .venv, starts the embedded PostgreSQL, migrates, loads demo data,
#               creates an admin (login printed), then serves the app with a background worker
#   make test   installs the test dependencies and runs the whole test suite
.DEFAULT_GOAL := help
SHELL := /bin/bash

VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_PROFILES ?= 1000
PYTEST_ARGS ?=
export DEBUG ?= 1

# A Python 3.12+: $(PYTHON) if given, else python3.13/python3.12/python3 that run, else pyenv's newest.
FIND_PYTHON = for p in $(PYTHON) python3.14 python3.13 python3.12 python3 $$(ls -d $$HOME/.pyenv/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -V -r); do \
	  if "$$p" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; then "$$p" -c 'import sys; print(sys.executable)'; exit 0; fi; \
	done; echo "No Python 3.12+ found: install python3.12 (or newer), or run make PYTHON=/path/to/python3.12" >&2; exit 1

.PHONY: help run test venv venv-test lint format bench worker serve clean-db

help:
	@echo "make run    set up and serve the product (admin at http://$(HOST):$(PORT)/admin/)"
	@echo "make test   set up and run the whole test suite"
	@echo "make lint   ruff check and format check; make bench runs the benchmarks (BENCH_PROFILES=N)"

$(VENV)/.installed: pyproject.toml
	@interpreter=$$($(FIND_PYTHON)) || exit 1; \
	  echo "Using $$interpreter"; \
	  [ -x $(PY) ] || "$$interpreter" -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $@

venv: $(VENV)/.installed
venv-test: $(VENV)/.installed-test

run: venv
	$(PY) manage.py migrate --no-input
	$(PY) manage.py load_demo_data --profiles $(DEMO_PROFILES) --if-empty
	$(PY) manage.py ensure_admin
	@echo "Starting the background worker and the web server on http://$(HOST):$(PORT)/ (Ctrl-C stops both)"
	@$(PY) manage.py db_worker & worker=$$!; trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	  $(PY) manage.py runserver $(HOST):$(PORT)

worker: venv
	$(PY) manage.py db_worker

test: venv-test
	DEBUG=0 $(PY) -m pytest -n $${PYTEST_WORKERS:-2} $(PYTEST_ARGS)

lint: venv-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv-test
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: venv-test
	$(PY) bench/b4_lookup.py --profiles $${BENCH_PROFILES:-10000}
	$(PY) bench/b1_b3_batch.py --profiles $${BENCH_PROFILES:-10000}
	$(PY) bench/b8_events.py --profiles $${BENCH_PROFILES:-10000}
	$(PY) bench/b10_admin.py --profiles $${BENCH_PROFILES:-100000}
