"""gunicorn's configuration: ``.venv/bin/gunicorn crm.wsgi`` reads it from the working directory.

Every value can be overridden from the environment (``GUNICORN_BIND``, ``WEB_CONCURRENCY``, …) or the
command line. Sync workers, one request at a time each: the API's work is short database round trips,
and each worker keeps its own small connection pool (``DB_POOL_MAX_SIZE``), so the database sees at most
workers × pool size connections per machine (put PgBouncer in front past a few machines).

Sync workers need the buffering reverse proxy in front (docs/operations.md: deploying), which shields them from slow
clients, and they close every connection after its answer (gunicorn ignores ``keepalive`` for them). Threaded
workers (``GUNICORN_WORKER_CLASS=gthread``, ``GUNICORN_THREADS`` each) keep connections alive for clients or
load balancers that reuse them; the app is thread-safe (per-thread database connections from the worker's pool,
locked per-process caches). Sync stays the default: its ``timeout`` also kills a worker stuck in one request,
which gthread's does not. Benchmark B4 measured the same lookups/s with both (1,218 sync, 1,202 gthread with
4 threads, the client keeping connections where offered; docs/benchmarks.md): gthread is for proxies that keep
upstream connections alive and for slow clients without a buffering proxy, not for speed.
"""

import json
import multiprocessing
import os

from gunicorn.http import wsgi as _gunicorn_wsgi

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Two per core (plus one) keeps the cores busy while others wait on PostgreSQL.
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "sync")
threads = int(os.environ.get("GUNICORN_THREADS", "1"))  # per worker; only gthread uses more than one
# Not preloaded: each worker opens its own database pool after the fork (a pool must not cross a fork).
preload_app = False
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
# Seconds an idle kept-alive connection stays open (threaded workers only; sync workers close after each answer).
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# Recycle workers now and then (jittered, so not all at once): bounds any slow growth in memory.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "20000"))
max_requests_jitter = max_requests // 10
# gunicorn's own worker heartbeat files: in memory, off a possibly slow disk (gunicorn's documented advice).
_SHM = "/dev/shm"  # noqa: S108 - gunicorn creates its files there itself, with private names
worker_tmp_dir = _SHM if os.path.isdir(_SHM) else None
# The proxy in front sets X-Forwarded-*; trust it only from these addresses (see BEHIND_PROXY for Django).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# Logs on stderr/stdout for the supervisor to collect. The access log (GUNICORN_ACCESS_LOG=1; the reverse proxy
# usually keeps one already) is one JSON object a line, with the request id the app sets on every answer
# (X-Request-ID), like the application's own log lines.
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
accesslog = "-" if os.environ.get("GUNICORN_ACCESS_LOG", "0") == "1" else None
access_log_format = json.dumps(
    {
        "time": "%(t)s",
        "logger": "gunicorn.access",
        "request_id": "%({x-request-id}o)s",
        "method": "%(m)s",
        "path": "%(U)s",
        "status": "%(s)s",
        "bytes": "%(B)s",
        "duration_ms": "%(M)s",
        "remote": "%(h)s",
    }
)


# No ``Server`` header: gunicorn writes ``Server: gunicorn`` into every answer itself (no setting turns it off, and
# the app cannot remove it), which only tells a prober what runs here. Workers are forked from this process, so
# they answer with the headers below; the WSGI ``SERVER_SOFTWARE`` the app sees carries no version either.
_gunicorn_default_headers = _gunicorn_wsgi.Response.default_headers


def _headers_without_server(self):
    return [line for line in _gunicorn_default_headers(self) if not line.lower().startswith("server:")]


_gunicorn_wsgi.Response.default_headers = _headers_without_server
_gunicorn_wsgi.SERVER_SOFTWARE = "gunicorn"


def child_exit(server, worker):
    """A worker that exited leaves the sums of the live gauges (PROMETHEUS_MULTIPROC_DIR; crm/metrics.py)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
