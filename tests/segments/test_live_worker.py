"""End to end with the real database worker (django-tasks-db's, in a thread): a new segment fills within
seconds, and a write's profile enters the segment within 5 s while the write itself returns at once."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connections
from django.test import override_settings

from profiles.models import Event
from segments.membership import live_cache_clear
from segments.models import SegmentMembership

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def worker(settings):
    from django_tasks_db.management.commands.db_worker import Worker

    assert settings.TASKS["default"]["BACKEND"] == "django_tasks_db.DatabaseBackend"
    w = Worker(
        queue_names=["*"],
        interval=0.1,
        batch=False,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id="tests",
        excluded_queue_names=[],
    )

    def run():
        try:
            w.run()
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield w
    w.running = False
    thread.join(timeout=10)


def wait_for(predicate, seconds: float) -> float:
    """Seconds until predicate() held; fails after ``seconds``."""
    begin = time.monotonic()
    while not predicate():
        if time.monotonic() - begin > seconds:
            pytest.fail(f"not within {seconds} s")
        time.sleep(0.05)
    return time.monotonic() - begin


@override_settings(SEGMENT_LIVE_CACHE_SECONDS=1, SEGMENT_REFRESH_DELAY_SECONDS=1)
def test_membership_follows_a_write_within_five_seconds(api, worker):
    live_cache_clear()
    assert api.post("/v4/clients", {"email": "ann@example.com"}, format="json").status_code == 202
    created = api.post(
        "/v4/segments", {"name": "Warsaw", "filter": {"field": "city", "op": "eq", "value": "warsaw"}}, format="json"
    )
    assert created.status_code == 201
    segment_id = created.json()["id"]
    api.post("/v4/clients", {"email": "bob@example.com", "city": "Warsaw"}, format="json")
    wait_for(lambda: SegmentMembership.objects.filter(segment_id=segment_id).count() == 1, 10)  # the fill

    begin = time.monotonic()
    response = api.post("/v4/clients/by-email/ann@example.com", {"city": "WARSAW"}, format="json")
    write = time.monotonic() - begin
    assert response.status_code == 202
    took = wait_for(lambda: SegmentMembership.objects.filter(segment_id=segment_id).count() == 2, 5)
    assert write < took  # the write did not wait for the refresh
    assert Event.objects.filter(action="segment.entered", params__segmentId=segment_id).count() == 1
