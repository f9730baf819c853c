"""/health: the database, queue lag per queue, worker heartbeats (the replica's lag: test_replica.py)."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from crm.heartbeat import heartbeat_beat, heartbeat_start, heartbeat_stop, worker_identity
from crm.models import WorkerHeartbeat
from crm.tasks import purge_expired
from profiles.tasks import rfm_recompute

pytestmark = pytest.mark.django_db


def test_waiting_tasks_without_a_live_worker_degrade_the_report(client):
    purge_expired.enqueue()
    result = rfm_recompute.enqueue()
    DBTaskResult.objects.filter(pk=result.id).update(enqueued_at=timezone.now() - timedelta(minutes=2))
    body = client.get("/health").json()
    assert body["queue"]["queues"]["recurring"]["waiting"] == 1
    assert 119 < body["queue"]["queues"]["batches"]["lagSeconds"] < 200
    assert body["workers"] == {"alive": 0, "stale": 0, "queues": [], "lastSeenSeconds": None}
    assert body["status"] == "degraded"

    heartbeat_beat(kind="db", queues=["batches", "recurring"], worker_id="w1")
    heartbeat_beat(kind="celery", queues=["deliveries"], worker_id="w2")
    WorkerHeartbeat.objects.filter(worker_id="w2").update(seen_at=timezone.now() - timedelta(minutes=5))
    response = client.get("/health")
    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "ok"
    assert body["workers"]["alive"] == 1 and body["workers"]["stale"] == 1
    assert body["workers"]["queues"] == ["batches", "recurring"]


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_thread_writes_and_a_clean_stop_removes_its_row(settings):
    settings.WORKER_HEARTBEAT_SECONDS = 0.2
    heartbeat_start(kind="db", queues=["*"])
    try:
        deadline = time.monotonic() + 10
        first = None
        while time.monotonic() < deadline and first is None:
            first = WorkerHeartbeat.objects.filter(worker_id=worker_identity()).first()
            time.sleep(0.05)
        assert first is not None and first.kind == "db" and first.queues == ["*"]
        time.sleep(0.5)
        assert WorkerHeartbeat.objects.get(worker_id=worker_identity()).seen_at > first.seen_at
    finally:
        heartbeat_stop()
    assert not WorkerHeartbeat.objects.filter(worker_id=worker_identity()).exists()
