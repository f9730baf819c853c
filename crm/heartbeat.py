"""Worker heartbeats: each worker process writes a row every ``WORKER_HEARTBEAT_SECONDS`` from a thread.

The database worker (``manage.py db_worker``) and Celery workers (``crm/celery.py``) start one at start-up;
``/health`` reads them (``crm.health``). A worker that stops cleanly deletes its row; one that dies leaves a
row that grows stale and is reported so, then purged after a day.
"""

from __future__ import annotations

import logging
import os
import socket
import threading

from django.conf import settings
from django.db import connection
from django.utils import timezone

logger = logging.getLogger(__name__)

_state: dict = {}


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def heartbeat_beat(*, kind: str, queues: list[str], worker_id: str | None = None) -> None:
    """Write (or refresh) this worker's row once."""
    from crm.models import WorkerHeartbeat

    now = timezone.now()
    worker_id = worker_id or worker_identity()
    WorkerHeartbeat.objects.update_or_create(
        worker_id=worker_id,
        defaults={"kind": kind, "queues": queues, "seen_at": now, "hostname": socket.gethostname(), "pid": os.getpid()},
        create_defaults={
            "kind": kind,
            "queues": queues,
            "seen_at": now,
            "started_at": now,
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
        },
    )


def _loop(kind: str, queues: list[str], stop: threading.Event) -> None:
    while True:
        try:
            heartbeat_beat(kind=kind, queues=queues)
        except Exception:  # the database away for a moment must not kill the thread
            logger.warning("Worker heartbeat not written", exc_info=True)
        finally:
            connection.close()  # back to the pool between beats
        if stop.wait(settings.WORKER_HEARTBEAT_SECONDS):
            return


def heartbeat_start(*, kind: str, queues: list[str]) -> None:
    """Start this process's heartbeat thread (once)."""
    if _state.get("thread"):
        return
    stop = threading.Event()
    thread = threading.Thread(target=_loop, args=(kind, queues, stop), name="worker-heartbeat", daemon=True)
    _state.update(thread=thread, stop=stop)
    thread.start()


def heartbeat_stop() -> None:
    """Stop the thread and delete this worker's row (a clean shutdown is not a dead worker)."""
    from crm.models import WorkerHeartbeat

    if stop := _state.pop("stop", None):
        stop.set()
        _state.pop("thread").join(timeout=5)
    try:
        WorkerHeartbeat.objects.filter(worker_id=worker_identity()).delete()
    except Exception:
        logger.warning("Worker heartbeat not removed", exc_info=True)
