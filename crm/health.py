"""What ``/health`` reports: the database, the read replica's lag, the task queues' lag and the workers.

``status`` is ``ok``, ``degraded`` (the replica is down or further behind than ``REPLICA_MAX_LAG_SECONDS``,
or no worker has been heard from within ``WORKER_HEARTBEAT_STALE_SECONDS`` while tasks wait) or
``unavailable`` (the primary database does not answer: the only case that answers 503, so a load balancer
takes the node out only when it cannot serve at all).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone

from crm.replica import replica_configured, replica_lag


def database_status() -> str:
    try:
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception:
        return "unavailable"


def replica_status() -> dict[str, Any] | None:
    """The replica's replay lag in seconds (0 when it has replayed all it received) and bytes; None without one."""
    if not replica_configured():
        return None
    try:
        in_recovery, seconds, lag_bytes = replica_lag()
    except Exception:
        return {"status": "unavailable"}
    if not in_recovery:
        return {"status": "not-a-replica"}  # promoted, or pointed at a primary by mistake
    status = "ok" if seconds <= settings.REPLICA_MAX_LAG_SECONDS else "lagging"
    return {"status": status, "lagSeconds": round(seconds, 3), "lagBytes": int(lag_bytes)}


def queue_status() -> dict[str, Any]:
    """Per queue, the tasks waiting and how long the oldest has been due (database backend), or the messages
    waiting in the broker (Celery)."""
    backend = settings.TASKS["default"]["BACKEND"]
    if backend.startswith("django_tasks_db"):
        return {"backend": "database", "queues": _database_queues()}
    if backend.startswith("django_tasks_celery"):
        return {"backend": "celery", "queues": _celery_queues()}
    return {"backend": backend.rsplit(".", 1)[-1], "queues": {}}


def _database_queues() -> dict[str, Any]:
    from django.db.models import Count, Min
    from django_tasks_db.models import DBTaskResult

    now = timezone.now()
    rows = (
        DBTaskResult.objects.ready()
        .values("queue_name")
        .annotate(waiting=Count("id"), oldest=Min("enqueued_at"), due=Min("run_after"))
        .order_by("queue_name")
    )
    queues = {}
    for row in rows:
        # A task without run_after is due since it was enqueued; one with run_after since that time.
        oldest_due = min(row["oldest"], row["due"]) if row["due"] and row["due"] <= now else row["oldest"]
        queues[row["queue_name"]] = {
            "waiting": row["waiting"],
            "lagSeconds": round(max((now - oldest_due).total_seconds(), 0.0), 3),
        }
    return queues


def _celery_queues() -> dict[str, Any]:
    try:
        from crm.celery import app

        with app.connection_for_read() as conn:
            client = conn.default_channel.client
            return {name: {"waiting": int(client.llen(name))} for name in settings.TASK_QUEUES}
    except Exception:
        return {"status": "unavailable"}


def worker_status() -> dict[str, Any]:
    from crm.models import WorkerHeartbeat

    now = timezone.now()
    fresh = now - timedelta(seconds=settings.WORKER_HEARTBEAT_STALE_SECONDS)
    beats = list(WorkerHeartbeat.objects.filter(seen_at__gte=now - timedelta(days=1)).order_by("worker_id"))
    alive = [b for b in beats if b.seen_at >= fresh]
    queues = sorted({q for b in alive for q in b.queues})
    return {
        "alive": len(alive),
        "stale": len(beats) - len(alive),
        "queues": queues,
        "lastSeenSeconds": round((now - max(b.seen_at for b in beats)).total_seconds(), 3) if beats else None,
    }


def health_report() -> tuple[dict[str, Any], int]:
    """The report and its HTTP status."""
    database = database_status()
    if database != "ok":
        return {"status": "unavailable", "database": database}, 503
    report: dict[str, Any] = {"status": "ok", "database": database}
    replica = replica_status()
    if replica is not None:
        report["replica"] = replica
        if replica["status"] != "ok":
            report["status"] = "degraded"
    report["queue"] = queue_status()
    report["workers"] = worker_status()
    waiting = sum(q.get("waiting", 0) for q in report["queue"]["queues"].values() if isinstance(q, dict))
    if waiting and not report["workers"]["alive"]:
        report["status"] = "degraded"
    return report, 200
