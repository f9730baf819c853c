"""Benchmark settings: the production settings (``crm.settings``, DEBUG off) on a dedicated database.

Used in-process by the benchmarks and by the gunicorn workers they start (``DJANGO_SETTINGS_MODULE=bench.settings``).
The database is ``BENCH_DB_NAME`` (default ``crm_bench``) on the same server as the app's: the embedded
PostgreSQL, or the one ``DATABASE_URL`` names. ``bench.common.setup_django`` creates it and migrates it.
"""

import os

# Production semantics whatever the caller exported (the Makefile exports DEBUG=1 for development):
# with DEBUG on, Django records every query in memory and the figures would measure that.
os.environ["DEBUG"] = "0"

from crm.settings import *  # noqa: F403

DATABASES["default"]["NAME"] = os.environ.get("BENCH_DB_NAME", "crm_bench")  # noqa: F405
# Plain HTTP on loopback and the test client's host name; the rest is production.
SECURE_SSL_REDIRECT = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
# The app's URLs plus the bench-only stock DRF view (bench/urls.py).
ROOT_URLCONF = "bench.urls"
# Experiment (b4_lookup.py --server-side-binding): psycopg server-side binding, so queries repeated on a
# connection are prepared automatically after psycopg's prepare_threshold (5) executions.
if os.environ.get("BENCH_SERVER_SIDE_BINDING") == "1":
    DATABASES["default"].setdefault("OPTIONS", {})["server_side_binding"] = True  # noqa: F405
