"""The same django.tasks tasks on a real Celery worker over Redis: a batch job and the recurring tasks.

The worker is a subprocess (``celery -A crm worker``) on the test database, over the Redis server the test session
starts itself (``redis_url`` in tests/conftest.py, emptied before and after each test).
"""

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection
from django.utils import timezone

from crm.models import IdempotencyRecord, Job, RecurringPlan, WorkerHeartbeat
from crm.tasks import purge_expired
from profiles.models import Profile
from profiles.services import ProfileInput
from profiles.services.batch import profiles_batch_submit

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.django_db(transaction=True)


def _database_url() -> str:
    s = connection.settings_dict
    host = quote(s["HOST"], safe="")  # the embedded server's socket folder
    return f"postgres://{quote(s['USER'])}:{quote(s['PASSWORD'] or '')}@{host}:{s['PORT']}/{s['NAME']}"


@pytest.fixture
def celery_settings(settings, redis_url):
    """This process enqueues to Celery on the test Redis, as the web process would."""
    from crm.celery import app

    settings.TASKS = {
        "default": {
            "BACKEND": "django_tasks_celery.CeleryBackend",
            "QUEUES": settings.TASK_QUEUES,
            "OPTIONS": {"CELERY_APP": "crm.celery.app"},
        }
    }
    previous = app.conf.broker_url, app.conf.result_backend
    app.conf.broker_url = app.conf.result_backend = redis_url
    yield
    app.conf.broker_url, app.conf.result_backend = previous


@pytest.fixture
def celery_worker(celery_settings, redis_url, tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "crm.settings_test",
        "DATABASE_URL": _database_url(),
        "TASKS_BACKEND": "django_tasks_celery.CeleryBackend",
        "CELERY_BROKER_URL": redis_url,
        "PURGE_INTERVAL_SECONDS": "3600",
        "IDEMPOTENCY_TTL_SECONDS": "60",
        "WORKER_HEARTBEAT_SECONDS": "1",
    }
    log = tmp_path / "worker.log"
    command = [sys.executable, "-m", "celery", "-A", "crm", "worker", "-Q", "default,batches,deliveries,recurring"]
    command += ["--pool", "solo", "--loglevel", "INFO", "--hostname", "tests@%h"]
    command += ["--without-mingle", "--without-gossip"]
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    yield process, log
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait_for(condition, *, timeout: float, log: Path, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.2)
    pytest.fail(f"Timed out waiting for {what}. Worker log:\n{log.read_text()[-4000:]}")


def test_a_batch_job_and_the_recurring_tasks_run_on_a_celery_worker(celery_worker):
    process, log = celery_worker
    old = IdempotencyRecord.objects.create(key="k", scope="s", request_hash="h")
    IdempotencyRecord.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=1))

    # The worker says it is alive, and plans the recurring tasks when it is ready: the purge runs at once,
    # then plans its next run an interval later (on Celery, through RecurringPlan and an ETA).
    beat = _wait_for(lambda: WorkerHeartbeat.objects.filter(kind="celery").first(), timeout=60, log=log, what="beat")
    assert "recurring" in beat.queues and "batches" in beat.queues
    _wait_for(
        lambda: RecurringPlan.objects.filter(
            task_path=purge_expired.module_path, run_after__gt=timezone.now() + timedelta(minutes=50)
        ).exists(),
        timeout=60,
        log=log,
        what="the purge's next run to be planned",
    )
    assert not IdempotencyRecord.objects.filter(pk=old.pk).exists()  # the first run did purge
    planned = set(RecurringPlan.objects.values_list("task_path", flat=True))
    assert "profiles.tasks.event_partitions_maintain" in planned

    # A batch job: submitted as the API does, run by the Celery worker.
    items = [
        ProfileInput(identifiers={"email": f"celery{i}@example.com"}, fields={"city": "Kraków"}) for i in range(25)
    ]
    job = profiles_batch_submit(items=items, source="api", actor="tests")
    done = _wait_for(
        lambda: Job.objects.filter(pk=job.pk, status__in=[Job.Status.DONE, Job.Status.FAILED]).first(),
        timeout=60,
        log=log,
        what="the batch job",
    )
    assert done.status == Job.Status.DONE, done.errors
    assert done.counts["created"] == 25
    assert Profile.objects.filter(email__startswith="celery", city="Kraków").count() == 25
    assert "run_profile_batch" in log.read_text()

    # A clean stop removes the worker's heartbeat.
    process.terminate()
    process.wait(timeout=15)
    assert not WorkerHeartbeat.objects.filter(worker_id=beat.worker_id).exists()


def test_health_counts_the_messages_waiting_in_redis(celery_settings, client):
    purge_expired.enqueue()
    purge_expired.enqueue()
    queue = client.get("/health").json()["queue"]
    assert queue["backend"] == "celery"
    assert queue["queues"]["recurring"] == {"waiting": 2}
    assert queue["queues"]["batches"] == {"waiting": 0}
