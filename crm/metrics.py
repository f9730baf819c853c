"""Prometheus metrics (prometheus-client): the platform's own, the registry of gauges the apps read from their
tables, the request middleware, and what ``/metrics`` answers (``metrics_exposition``) and to whom
(``metrics_refusal``).

Three kinds of figures:

- **Counters and histograms** the code updates as it works: requests by route template, method and status
  with their latency, rate-limit rejections, finished tasks, the connection pool's waits; the features add their
  own (webhook deliveries, import and export rows) with prometheus-client's classes. Each process keeps them in
  memory, or, with ``PROMETHEUS_MULTIPROC_DIR`` set (prometheus-client's own variable, read when it is first
  imported), in files in that directory that every process of the machine writes (gunicorn workers,
  ``db_worker``, ``webhook_worker``, Celery workers) and any web process's ``/metrics`` adds up.
- **Per-process gauges** of the database connection pool, sampled by a thread every ``METRICS_SAMPLE_SECONDS``
  (and at each scrape); in multiprocess mode summed over the live processes.
- **Gauges read at scrape time** by a collector: the sources registered with ``gauge_register``, each a cheap
  query (queue depths, the webhook outbox, segment refresh lag, workers, replica lag, disk use). The platform
  registers those of its own tables (``crm/system.py``); a feature registers those of its tables from its
  ``AppConfig.ready()``, so the platform never imports a feature. The System page's recurring recorder reads
  the same sources.
"""

from __future__ import annotations

import atexit
import functools
import hmac
import ipaddress
import logging
import os
import platform
import threading
import time
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import django
from django.conf import settings
from django.tasks.signals import task_finished
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

logger = logging.getLogger(__name__)

# --- The registry of gauges read at scrape time --------------------------------------------------------------


@dataclass(frozen=True)
class GaugeSource:
    """A gauge family read when it is asked for: ``read()`` yields (label values in ``labels`` order, value)."""

    name: str
    documentation: str
    read: Callable[[], Iterable[tuple[tuple[str, ...], float]]]
    labels: tuple[str, ...] = ()
    unit: str = ""  # how the System page shows a value: "seconds", "bytes" or "" (a count)


_sources: dict[str, GaugeSource] = {}


def gauge_register(
    *,
    name: str,
    documentation: str,
    read: Callable[[], Iterable[tuple[tuple[str, ...], float]]],
    labels: tuple[str, ...] = (),
    unit: str = "",
) -> None:
    """Add a gauge family read at scrape time (and by the System page's recorder). Registering a name again
    replaces it (an app's ready() run twice registers the same)."""
    _sources[name] = GaugeSource(name=name, documentation=documentation, read=read, labels=tuple(labels), unit=unit)


def gauge_sources() -> list[GaugeSource]:
    return list(_sources.values())


_read_answers: ContextVar[dict | None] = ContextVar("metrics_read_answers", default=None)


def read_once(fn: Callable[[], object]) -> Callable[[], object]:
    """For a query several gauge families read (a backlog's count and its age): run it once per ``gauges_read()``
    and hand every family the same answer. Outside a read, each call runs the query."""

    @functools.wraps(fn)
    def shared():
        answers = _read_answers.get()
        if answers is None:
            return fn()
        if shared not in answers:
            answers[shared] = fn()
        return answers[shared]

    return shared


def gauges_read() -> list[tuple[GaugeSource, list[tuple[tuple[str, ...], float]]]]:
    """Every registered source with what it reads now; a source that fails is logged and left out, so one broken
    query never hides the others."""
    readings = []
    token = _read_answers.set({})
    try:
        for source in gauge_sources():
            try:
                rows = [(tuple(str(v) for v in labels), float(value)) for labels, value in source.read()]
            except Exception:
                logger.warning("metrics source %s failed", source.name, exc_info=True)
                continue
            readings.append((source, rows))
    finally:
        _read_answers.reset(token)
    return readings


def series_key(name: str, labels: tuple[str, ...], values: tuple[str, ...]) -> str:
    """One series written as Prometheus writes it: ``name{label="value",…}``."""
    if not labels:
        return name
    inner = ",".join(f'{label}="{value}"' for label, value in zip(labels, values, strict=True))
    return f"{name}{{{inner}}}"


# --- Counters and histograms of the platform -----------------------------------------------------------------

# Request latencies from a cached lookup (about a millisecond) to a slow admin page.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "<unmatched>"

HTTP_REQUESTS = Counter(
    "crm_http_requests",
    "HTTP requests answered, by route template (the URL pattern, not the path), method and status.",
    ["route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "crm_http_request_duration_seconds",
    "Time to answer a request (to its headers: a streamed body goes on after), by route template and method.",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
)
RATE_LIMIT_REJECTIONS = Counter(
    "crm_rate_limit_rejections",
    "Requests refused with 429 by a rate limit, by policy (key: an API key's; ip: login and consent pages; "
    "tracker: the tracker's collect).",
    ["policy"],
)
TASKS_FINISHED = Counter(
    "crm_tasks_finished",
    "Background tasks finished, by queue, task and status (successful or failed).",
    ["queue", "task", "status"],
)
TASK_DURATION = Histogram(
    "crm_task_duration_seconds",
    "Time a background task ran, by queue.",
    ["queue"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0),
)
POOL_CONNECTIONS = Gauge(
    "crm_db_pool_connections",
    "Connections in the database connection pools, by alias and state (in_use, idle).",
    ["alias", "state"],
    multiprocess_mode="livesum",
)
POOL_MAX = Gauge(
    "crm_db_pool_max_connections",
    "The most connections the pools may open (DB_POOL_MAX_SIZE per process).",
    ["alias"],
    multiprocess_mode="livesum",
)
POOL_WAITING = Gauge(
    "crm_db_pool_requests_waiting",
    "Requests for a connection waiting for the pool now.",
    ["alias"],
    multiprocess_mode="livesum",
)
POOL_REQUESTS = Counter("crm_db_pool_requests", "Connections asked of the pool.", ["alias"])
POOL_WAITS = Counter("crm_db_pool_waits", "Requests for a connection that had to wait (none was free).", ["alias"])
POOL_WAIT_SECONDS = Counter("crm_db_pool_wait_seconds", "Time spent waiting for a pooled connection.", ["alias"])
POOL_TIMEOUTS = Counter(
    "crm_db_pool_errors",
    "Requests for a connection that failed (DB_POOL_TIMEOUT passed, or the server did not answer).",
    ["alias"],
)
POOL_LOST = Counter("crm_db_pool_connections_lost", "Pooled connections found broken and replaced.", ["alias"])


def rate_limit_rejected(policy: str) -> None:
    RATE_LIMIT_REJECTIONS.labels(policy).inc()


def _task_finished(sender, task_result, **kwargs) -> None:
    try:
        task = task_result.task
        queue = task.queue_name
        TASKS_FINISHED.labels(queue, task.module_path, str(task_result.status).lower()).inc()
        if task_result.started_at and task_result.finished_at:
            TASK_DURATION.labels(queue).observe((task_result.finished_at - task_result.started_at).total_seconds())
    except Exception:  # a figure must never fail a task
        logger.warning("task metrics not recorded", exc_info=True)


task_finished.connect(_task_finished, dispatch_uid="crm.metrics.task_finished")


# --- The connection pool, sampled per process ----------------------------------------------------------------

_pool_lock = threading.Lock()


def _pools() -> list[tuple[str, object]]:
    """The psycopg pools this process has opened (Django keeps them per alias on its PostgreSQL backend class);
    asking ``connections[alias].pool`` would open one where none was."""
    from django.db.backends.postgresql.base import DatabaseWrapper

    return list(getattr(DatabaseWrapper, "_connection_pools", {}).items())


def pool_sample() -> None:
    """Move the pools' counters (reset as they are read) into the process's metrics and set its gauges."""
    _exit_hook()
    with _pool_lock:
        for alias, pool in _pools():
            try:
                stats = pool.pop_stats()
            except Exception:  # a pool being closed
                logger.debug("pool %s not sampled", alias, exc_info=True)
                continue
            size, available = stats.get("pool_size", 0), stats.get("pool_available", 0)
            POOL_CONNECTIONS.labels(alias, "in_use").set(max(size - available, 0))
            POOL_CONNECTIONS.labels(alias, "idle").set(available)
            POOL_MAX.labels(alias).set(stats.get("pool_max", 0))
            POOL_WAITING.labels(alias).set(stats.get("requests_waiting", 0))
            POOL_REQUESTS.labels(alias).inc(stats.get("requests_num", 0))
            POOL_WAITS.labels(alias).inc(stats.get("requests_queued", 0))
            POOL_WAIT_SECONDS.labels(alias).inc(stats.get("requests_wait_ms", 0) / 1000)
            POOL_TIMEOUTS.labels(alias).inc(stats.get("requests_errors", 0))
            POOL_LOST.labels(alias).inc(stats.get("connections_lost", 0))


_sampler: dict = {}


def _sample_loop(stop: threading.Event) -> None:
    while not stop.wait(max(float(settings.METRICS_SAMPLE_SECONDS), 0.1)):
        try:
            pool_sample()
        except Exception:
            logger.warning("pool metrics not sampled", exc_info=True)


def metrics_sampler_start() -> None:
    """Start this process's sampling thread (once per process: web processes from the middleware, the workers
    from their commands). In multiprocess mode the process samples once more when it exits, then drops its live
    gauges."""
    if _sampler.get("pid") == os.getpid():
        return
    stop = threading.Event()
    thread = threading.Thread(target=_sample_loop, args=(stop,), name="metrics-sampler", daemon=True)
    _sampler.update(pid=os.getpid(), stop=stop, thread=thread)
    thread.start()
    _exit_hook()


_exit_hooked: set[int] = set()


def _exit_hook() -> None:
    """In multiprocess mode, once per process that set a live gauge: drop them when it exits."""
    pid = os.getpid()
    if pid not in _exit_hooked and multiprocess_dir():
        _exit_hooked.add(pid)
        atexit.register(_at_exit, pid)


def _at_exit(pid: int) -> None:
    if pid != os.getpid():
        return  # a forked child inherits the hook: only the process that set the gauges drops them
    try:
        pool_sample()  # the pool's last counts, into the sums that outlive the process
        process_exited(pid)
    except Exception:  # an exiting process prints no traceback for a figure
        logger.debug("metrics not closed at exit", exc_info=True)


def dead_processes_forget(directory: str) -> None:
    """Drop the live gauges of processes that died without saying so (killed, or stopped by a signal that skipped
    their exit hooks), so the pool's figures are the live processes' only. The processes sharing a directory are
    one machine's, so a pid that does not answer is gone."""
    for path in Path(directory).glob("gauge_live*_*.db"):
        pid = path.stem.rsplit("_", 1)[-1]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            mark_process_dead(int(pid), directory)
        except PermissionError:  # alive, another user's
            continue


def process_exited(pid: int) -> None:
    """Forget a finished process's live gauges (its counters stay in the sums). gunicorn's master calls this for
    each worker that exits (``gunicorn.conf.py``); the other processes at their own exit."""
    if directory := multiprocess_dir():
        mark_process_dead(pid, directory)


# --- Requests ---------------------------------------------------------------------------------------------------


class RequestMetricsMiddleware:
    """Counts every answer by route template, method and status and times it; first in ``MIDDLEWARE`` so the
    time covers the other middleware too. The route is the URL pattern that matched (``/v4/clients/<int:…>``),
    never the path, so a label never takes a value per profile; a path no pattern matched is ``<unmatched>``."""

    def __init__(self, get_response):
        self.get_response = get_response
        metrics_sampler_start()

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - started
        match = getattr(request, "resolver_match", None)
        route = f"/{match.route}" if match is not None and match.route else UNMATCHED
        method = request.method if request.method in METHODS else "other"
        HTTP_REQUESTS.labels(route, method, str(response.status_code)).inc()
        HTTP_DURATION.labels(route, method).observe(elapsed)
        return response


# --- The answer of /metrics ------------------------------------------------------------------------------------


def multiprocess_dir() -> str:
    return settings.METRICS_MULTIPROC_DIR


def _version() -> str:
    try:
        return metadata.version("crm")
    except metadata.PackageNotFoundError:
        return "unknown"


class ScrapeCollector:
    """What is read when ``/metrics`` is asked: the registered gauge sources and the build."""

    def collect(self):
        info = GaugeMetricFamily(
            "crm_build_info",
            "The running build: 1, with its version, revision, Python and Django as labels.",
            labels=["version", "revision", "python", "django"],
        )
        info.add_metric([_version(), settings.BUILD_REVISION, platform.python_version(), django.get_version()], 1)
        yield info
        for source, rows in gauges_read():
            family = GaugeMetricFamily(source.name, source.documentation, labels=list(source.labels))
            for labels, value in rows:
                family.add_metric(list(labels), value)
            yield family


class _Collectors:
    def __init__(self, *collectors):
        self.collectors = collectors

    def collect(self):
        for collector in self.collectors:
            yield from collector.collect()


def metrics_exposition(accept: str = "") -> tuple[bytes, str]:
    """The metrics in the text format (OpenMetrics when ``accept`` asks for it) and the content type: with
    ``PROMETHEUS_MULTIPROC_DIR``, every process's files added up, else this process's own; then the gauges
    read now."""
    pool_sample()
    if directory := multiprocess_dir():
        dead_processes_forget(directory)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)
        collectors = _Collectors(registry, ScrapeCollector())
    else:
        collectors = _Collectors(REGISTRY, ScrapeCollector())
    encoder, content_type = choose_encoder(accept)
    return encoder(collectors), content_type


class _ProcessOwn:
    """This process's metrics alone (a worker's own port): its pool sampled at each scrape, then its registry."""

    def collect(self):
        pool_sample()
        yield from REGISTRY.collect()


def metrics_port_serve(port: int):
    """Serve this process's metrics on ``port`` on loopback, from a thread (a worker's alternative to
    ``PROMETHEUS_MULTIPROC_DIR``): no token is asked there, so it never listens beyond this machine. Returns the
    server (``shutdown()`` stops it)."""
    server, _ = start_http_server(port, addr="127.0.0.1", registry=_ProcessOwn())
    return server


def _is_loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def metrics_refusal(request, *, client_address: str | None) -> tuple[int, str] | None:
    """None when the request may read the metrics, else (status, why).

    A request that sends ``Authorization`` must carry ``Bearer <METRICS_TOKEN>`` (401 otherwise, even from
    loopback); one that sends none is let in from a loopback address (unless ``METRICS_ALLOW_LOOPBACK`` is off)
    and refused elsewhere: 401 when a token is set (ask for it), 403 when none is (nobody else may).
    """
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, given = header.partition(" ")
        if token and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
            return None
        return 401, "Wrong metrics token." if token else "No METRICS_TOKEN is set: only loopback may read metrics."
    if settings.METRICS_ALLOW_LOOPBACK and _is_loopback(client_address):
        return None
    if token:
        return 401, "Send Authorization: Bearer <METRICS_TOKEN>."
    return 403, "Metrics are served to loopback clients only (set METRICS_TOKEN to allow others)."
