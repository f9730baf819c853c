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
DATA_DIR := $(or $(CRM_DATA_DIR),.data)
export DEBUG ?= 1

# A Python 3.12+: $(PYTHON) if given, else python3.13/python3.12/python3 that run, else pyenv's newest.
FIND_PYTHON = for p in $(PYTHON) python3.14 python3.13 python3.12 python3 $$(ls -d $$HOME/.pyenv/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -V -r); do \
	  if "$$p" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; then "$$p" -c 'import sys; print(sys.executable)'; exit 0; fi; \
	done; echo "No Python 3.12+ found: install python3.12 (or newer), or run make PYTHON=/path/to/python3.12" >&2; exit 1

.PHONY: help run test venv venv-test lint format bench worker webhook-worker celery-worker deploy-check db-stop reset screenshots

help:
	@echo "make run    set up and serve the product (admin at http://$(HOST):$(PORT)/admin/)"
	@echo "make test   set up and run the whole test suite"
	@echo "make lint   ruff check and format check; make bench runs the benchmarks (BENCH_PROFILES=N)"
	@echo "make deploy-check check --deploy, migrations applied, static files collected (production environment)"
	@echo "make celery-worker a Celery worker on every queue (TASKS_BACKEND=django_tasks_celery.CeleryBackend)"
	@echo "make db-stop      stop the embedded PostgreSQL (it keeps running after make run ends)"
	@echo "make reset        delete the embedded database (asks first; RESET_CONFIRM=yes skips the question)"
	@echo "make screenshots  docs/card.png: the demo data's showcase card in Chromium"

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
	@echo "Starting the background worker, the webhook worker and the web server on http://$(HOST):$(PORT)/ (Ctrl-C stops all)"
	@$(PY) manage.py db_worker & worker=$$!; $(PY) manage.py webhook_worker & webhooks=$$!; \
	  trap 'kill $$worker $$webhooks 2>/dev/null' EXIT INT TERM; \
	  $(PY) manage.py runserver $(HOST):$(PORT)

worker: venv
	$(PY) manage.py db_worker

# Celery instead of the database worker: the web processes need TASKS_BACKEND=django_tasks_celery.CeleryBackend too.
celery-worker: venv
	TASKS_BACKEND=django_tasks_celery.CeleryBackend $(VENV)/bin/celery -A crm worker -Q default,batches,deliveries,recurring --loglevel INFO

# Run with the production environment (DEBUG=0, SECRET_KEY, ALLOWED_HOSTS, DATABASE_URL, …) after migrate and collectstatic.
deploy-check: venv
	DEBUG=0 $(PY) manage.py deploy_check

webhook-worker: venv
	$(PY) manage.py webhook_worker

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
	$(PY) bench/b9_webhooks.py --profiles $${BENCH_PROFILES:-10000}
	$(PY) bench/b10_admin.py --profiles $${BENCH_PROFILES:-100000}
	$(PY) bench/export_stream.py --sizes 10000,$${BENCH_PROFILES:-100000}
	$(PY) bench/b5_b6_segments.py --profiles $${BENCH_PROFILES:-100000}

# The embedded PostgreSQL keeps running after `make run` stops, so the next start is instant; this stops it.
db-stop: venv
	@$(PY) -c 'from pathlib import Path; from crm.embedded_db import embedded_database_stop; print(embedded_database_stop(Path("$(DATA_DIR)")))'

# Deletes the embedded database (every profile, event, consent, key and admin user); `make run` starts afresh.
# The secret key and the demo admin's password in $(DATA_DIR) stay. With DATABASE_URL set it refuses.
reset: venv
	@if [ -n "$$DATABASE_URL" ]; then echo "DATABASE_URL is set: make reset only deletes the embedded database." >&2; exit 1; fi
	@if [ "$$RESET_CONFIRM" != "yes" ]; then \
	  read -r -p "Delete the embedded database in $(DATA_DIR)/postgres (all profiles, events, consents, keys, users)? Type yes: " answer; \
	  [ "$$answer" = "yes" ] || { echo "Nothing deleted."; exit 1; }; \
	fi
	@$(MAKE) --no-print-directory db-stop
	rm -rf "$(DATA_DIR)/postgres"
	@echo "Deleted. make run creates, migrates and fills a new database."

# docs/card.png from the demo data (DEMO_PROFILES profiles): the showcase card at 1600x1000 in the system Chromium.
screenshots: venv-test
	SCREENSHOTS_DIR=docs SCREENSHOT_PROFILES=$(DEMO_PROFILES) DEBUG=0 $(PY) -m pytest -q -p no:cacheprovider \
	  "tests/browser/test_demo_card_browser.py::test_the_showcase_card_is_full_and_its_columns_balanced[1600-1000]"
	@echo "Wrote docs/card.png"
