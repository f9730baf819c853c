"""The platform's figures for monitoring: the gauges it reads from its own tables (registered with
``crm.metrics.gauge_register``), the directories whose disk use is watched, the recorder the System page's charts
come from, and the page's reads.

Gauges of the platform: task queue depth and the oldest due task's age per queue (django-tasks-db's table, or the
broker with Celery), workers alive and stale (their heartbeats), failures in the last hour (batch jobs and
tasks), the read replica's lag, and the disk use of the watched directories (the data directory here; the export
spool is registered by the exports app). ``system_sample_record`` (a recurring task, every
``SYSTEM_SAMPLE_SECONDS``) stores every registered gauge, the features' too, as one ``SystemSample`` row, and
deletes rows older than ``SYSTEM_SAMPLE_RETENTION_HOURS``.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from crm.health import queue_status, replica_status
from crm.metrics import gauge_register, gauges_read, read_once, series_key
from crm.models import Job, SystemSample, WorkerHeartbeat

# --- Directories whose disk use is watched ------------------------------------------------------------------------


@dataclass(frozen=True)
class WatchedDirectory:
    name: str  # the label value: data, export_spool, …
    path: Callable[[], str]  # read each time: settings may change
    prefix: str = ""  # only the entries whose names start with this (a shared folder such as /tmp)


_directories: dict[str, WatchedDirectory] = {}


def directory_watch(*, name: str, path: Callable[[], str], prefix: str = "") -> None:
    """Watch a directory's disk use (the bytes of its files, and the free space of its file system)."""
    _directories[name] = WatchedDirectory(name=name, path=path, prefix=prefix)


def watched_directories() -> list[WatchedDirectory]:
    return list(_directories.values())


_DU_CACHE_SECONDS = 30.0
_du_cache: dict[tuple[str, str], tuple[float, int]] = {}
_du_lock = threading.Lock()


def directory_bytes(path: str, prefix: str = "") -> int:
    """Bytes of the files under ``path`` (only the top-level entries starting with ``prefix``, when given); a
    walk, so kept for 30 s per process (a scrape every few seconds walks it at most twice a minute)."""
    key = (path, prefix)
    now = time.monotonic()
    with _du_lock:
        cached = _du_cache.get(key)
        if cached and now - cached[0] < _DU_CACHE_SECONDS:
            return cached[1]
    total = 0
    try:
        entries = list(os.scandir(path))
    except OSError:
        entries = []
    stack = [e for e in entries if e.name.startswith(prefix)]
    while stack:
        entry = stack.pop()
        try:
            if entry.is_dir(follow_symlinks=False):
                stack.extend(os.scandir(entry.path))
            elif entry.is_file(follow_symlinks=False):
                total += entry.stat(follow_symlinks=False).st_size
        except OSError:  # a file gone while walking (PostgreSQL's temporary files, a finished export)
            continue
    with _du_lock:
        _du_cache[key] = (now, total)
    return total


def _existing(path: str) -> str | None:
    """The path, or its nearest existing parent (the file system a directory not made yet will be on)."""
    candidate = Path(path).resolve()
    while not candidate.exists() and candidate != candidate.parent:
        candidate = candidate.parent
    return str(candidate) if candidate.exists() else None


def _disk_used() -> Iterable[tuple[tuple[str, ...], float]]:
    for directory in watched_directories():
        yield (directory.name,), directory_bytes(directory.path(), directory.prefix)


def _disk_free() -> Iterable[tuple[tuple[str, ...], float]]:
    for directory in watched_directories():
        if (path := _existing(directory.path())) is not None:
            yield (directory.name,), shutil.disk_usage(path).free


def _disk_size() -> Iterable[tuple[tuple[str, ...], float]]:
    for directory in watched_directories():
        if (path := _existing(directory.path())) is not None:
            yield (directory.name,), shutil.disk_usage(path).total


# --- Queues, workers, failures, the replica -----------------------------------------------------------------------


@read_once
def _queues() -> dict:
    status = queue_status()
    queues = status["queues"] if isinstance(status["queues"], dict) else {}
    return {name: queues.get(name, {}) for name in sorted({*settings.TASK_QUEUES, *queues})}


def _queue_depth():
    for name, queue in _queues().items():
        if isinstance(queue, dict) and "waiting" in queue:
            yield (name,), queue["waiting"]
        elif isinstance(queue, dict) and not queue:
            yield (name,), 0


def _queue_oldest_age():
    if not settings.TASKS["default"]["BACKEND"].startswith("django_tasks_db"):
        return  # the broker does not say how long a message has waited
    for name, queue in _queues().items():
        yield (name,), queue.get("lagSeconds", 0.0) if isinstance(queue, dict) else 0.0


@read_once
def _workers() -> dict[str, tuple[int, int]]:
    """Per worker kind: (alive, stale) heartbeats of the last day."""
    now = timezone.now()
    fresh = now - timedelta(seconds=settings.WORKER_HEARTBEAT_STALE_SECONDS)
    rows = (
        WorkerHeartbeat.objects.filter(seen_at__gte=now - timedelta(days=1))
        .values("kind")
        .annotate(alive=Count("pk", filter=Q(seen_at__gte=fresh)), all=Count("pk"))
    )
    counts = {"db": (0, 0)}
    counts.update({row["kind"]: (row["alive"], row["all"] - row["alive"]) for row in rows})
    return counts


def _workers_alive():
    for kind, (alive, _) in sorted(_workers().items()):
        yield (kind,), alive


def _workers_stale():
    for kind, (_, stale) in sorted(_workers().items()):
        yield (kind,), stale


def _failures_last_hour():
    since = timezone.now() - timedelta(hours=1)
    yield ("job",), Job.objects.filter(status=Job.Status.FAILED, finished_at__gte=since).count()
    if settings.TASKS["default"]["BACKEND"].startswith("django_tasks_db"):
        yield ("task",), DBTaskResult.objects.failed().filter(finished_at__gte=since).count()


_replica = read_once(replica_status)


def _replica_lag():
    replica = _replica()
    if replica is not None and "lagSeconds" in replica:
        yield (), replica["lagSeconds"]


def _replica_lag_bytes():
    replica = _replica()
    if replica is not None and "lagBytes" in replica:
        yield (), replica["lagBytes"]


def _replica_up():
    replica = _replica()
    if replica is not None:
        yield (), 1.0 if replica["status"] in ("ok", "lagging") else 0.0


def register() -> None:
    """The platform's gauges (called from ``crm.apps``)."""
    directory_watch(name="data", path=lambda: str(settings.DATA_DIR))
    gauge_register(
        name="crm_task_queue_depth",
        documentation="Tasks waiting to run (due now), per queue.",
        labels=("queue",),
        read=_queue_depth,
    )
    gauge_register(
        name="crm_task_queue_oldest_age_seconds",
        documentation="How long the oldest due task of each queue has waited (database backend).",
        labels=("queue",),
        read=_queue_oldest_age,
        unit="seconds",
    )
    gauge_register(
        name="crm_workers_alive",
        documentation="Workers whose heartbeat is fresh (within WORKER_HEARTBEAT_STALE_SECONDS), per kind.",
        labels=("kind",),
        read=_workers_alive,
    )
    gauge_register(
        name="crm_workers_stale",
        documentation="Workers silent for longer than WORKER_HEARTBEAT_STALE_SECONDS (heard from within a day).",
        labels=("kind",),
        read=_workers_stale,
    )
    gauge_register(
        name="crm_failures_last_hour",
        documentation="Batch jobs (job) and background tasks (task) that failed in the last hour.",
        labels=("kind",),
        read=_failures_last_hour,
    )
    gauge_register(
        name="crm_replica_lag_seconds",
        documentation="The read replica's replay lag (0 when it has replayed all it received).",
        read=_replica_lag,
        unit="seconds",
    )
    gauge_register(
        name="crm_replica_lag_bytes",
        documentation="WAL the read replica has received and not replayed yet.",
        read=_replica_lag_bytes,
        unit="bytes",
    )
    gauge_register(
        name="crm_replica_up",
        documentation="1 while the read replica answers and follows the primary (absent without a replica).",
        read=_replica_up,
    )
    gauge_register(
        name="crm_disk_used_bytes",
        documentation="Bytes of the files in a watched directory (data: CRM_DATA_DIR; export_spool: the export "
        "files being sent).",
        labels=("dir",),
        read=_disk_used,
        unit="bytes",
    )
    gauge_register(
        name="crm_disk_free_bytes",
        documentation="Free space of the file system a watched directory is on.",
        labels=("dir",),
        read=_disk_free,
        unit="bytes",
    )
    gauge_register(
        name="crm_disk_size_bytes",
        documentation="Size of the file system a watched directory is on.",
        labels=("dir",),
        read=_disk_size,
        unit="bytes",
    )


# --- The recorder -----------------------------------------------------------------------------------------------


def system_sample_record(*, now: datetime | None = None) -> dict:
    """Store every registered gauge as one sample, and delete samples past their retention."""
    now = now or timezone.now()
    values = {
        series_key(source.name, source.labels, labels): value
        for source, rows in gauges_read()
        for labels, value in rows
    }
    SystemSample.objects.create(taken_at=now, values=values)
    cutoff = now - timedelta(hours=settings.SYSTEM_SAMPLE_RETENTION_HOURS)
    deleted, _ = SystemSample.objects.filter(taken_at__lt=cutoff).delete()
    return {"series": len(values), "deleted": deleted}


def series_history(*, since: datetime) -> dict[str, list[tuple[datetime, float]]]:
    """Every recorded series since ``since``, oldest point first."""
    history: dict[str, list[tuple[datetime, float]]] = {}
    for taken_at, values in (
        SystemSample.objects.filter(taken_at__gte=since).order_by("taken_at").values_list("taken_at", "values")
    ):
        for key, value in values.items():
            history.setdefault(key, []).append((taken_at, float(value)))
    return history


# --- What the System page shows besides the charts --------------------------------------------------------------


def worker_heartbeats() -> list[dict]:
    """Workers heard from in the last day, newest first, each with its age and whether it is fresh."""
    now = timezone.now()
    stale_after = settings.WORKER_HEARTBEAT_STALE_SECONDS
    return [
        {
            "worker": beat,
            "age": (now - beat.seen_at).total_seconds(),
            "fresh": (now - beat.seen_at).total_seconds() <= stale_after,
        }
        for beat in WorkerHeartbeat.objects.filter(seen_at__gte=now - timedelta(days=1)).order_by("-seen_at")
    ]


def oldest_waiting_tasks() -> dict[str, dict]:
    """Per queue, the task that has waited longest among those due (database backend)."""
    if not settings.TASKS["default"]["BACKEND"].startswith("django_tasks_db"):
        return {}
    rows = (
        DBTaskResult.objects.ready()
        .order_by("queue_name", "enqueued_at")
        .distinct("queue_name")
        .values("id", "queue_name", "task_path", "enqueued_at")
    )
    return {row["queue_name"]: row for row in rows}


def queue_rows() -> list[dict]:
    oldest = oldest_waiting_tasks()
    return [
        {
            "name": name,
            "waiting": queue.get("waiting", 0) if isinstance(queue, dict) else None,
            "age": queue.get("lagSeconds") if isinstance(queue, dict) else None,
            "oldest": oldest.get(name),
        }
        for name, queue in _queues().items()
    ]


def failed_recently(*, limit: int = 10) -> list[dict]:
    """The last failed batch jobs and tasks, newest first, with their errors."""
    failures = []
    for job in Job.objects.filter(status=Job.Status.FAILED).defer("payload").order_by("-finished_at")[:limit]:
        first = next((e for e in (job.errors or []) if isinstance(e, dict)), None)
        detail = job.message or (f"{first.get('code', '')}: {first.get('message', '')}" if first else "")
        failures.append(
            {
                "kind": "job",
                "id": str(job.pk),
                "name": job.kind,
                "at": job.finished_at or job.created_at,
                "error": detail,
                "errors": len(job.errors or []),
            }
        )
    if settings.TASKS["default"]["BACKEND"].startswith("django_tasks_db"):
        for result in DBTaskResult.objects.failed().order_by("-finished_at")[:limit]:
            lines = [line for line in (result.traceback or "").strip().splitlines() if line.strip()]
            failures.append(
                {
                    "kind": "task",
                    "id": str(result.pk),
                    "name": result.task_path,
                    "at": result.finished_at,
                    "error": lines[-1] if lines else result.exception_class_path,
                    "errors": 1,
                }
            )
    failures.sort(key=lambda f: f["at"] or timezone.now(), reverse=True)
    return failures[:limit]


def disk_rows() -> list[dict]:
    rows = []
    for directory in watched_directories():
        path = directory.path()
        existing = _existing(path)
        usage = shutil.disk_usage(existing) if existing else None
        rows.append(
            {
                "name": directory.name,
                "path": path + (f"/{directory.prefix}*" if directory.prefix else ""),
                "used": directory_bytes(path, directory.prefix),
                "free": usage.free if usage else None,
                "size": usage.total if usage else None,
            }
        )
    return rows
