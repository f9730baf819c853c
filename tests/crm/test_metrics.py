"""/metrics: the families and their labels after requests, a batch run by the worker, a webhook delivery, an import
and an export; who may read it; the worker processes' figures through PROMETHEUS_MULTIPROC_DIR; not in the schema."""

import io
import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from drf_spectacular.generators import SchemaGenerator
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from crm import metrics
from crm.metrics import dead_processes_forget, metrics_exposition, metrics_port_serve
from crm.services import api_key_create
from imports.services import import_create, import_run
from tests.webhooks.conftest import Receiver
from webhooks.delivery import connection_pool, deliver_due
from webhooks.models import EventType
from webhooks.services import subscription_create

ROOT = Path(__file__).resolve().parents[2]


def parse(text: str) -> dict[str, list]:
    """Sample name → its samples (a counter's family ``x`` has samples ``x_total``)."""
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def scrape(client, **extra) -> dict[str, list]:
    response = client.get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return parse(response.content.decode())


def value(samples, name: str, **labels) -> float:
    """The sum of ``name``'s samples whose labels include ``labels`` (0 when there is none)."""
    return sum(s.value for s in samples.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items()))


def labelsets(samples, name: str, label: str) -> set[str]:
    return {s.labels.get(label) for s in samples.get(name, [])}


@pytest.fixture
def receiver(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    server = Receiver()
    yield server
    connection_pool().close_all()
    server.close()


@pytest.mark.django_db(transaction=True)
def test_families_and_labels_after_requests_a_batch_and_a_webhook_delivery(client, api, receiver):
    subscription, _ = subscription_create(url=receiver.url, events=[EventType.PROFILE_CREATED])
    before = scrape(client)

    assert api.post("/v4/clients", {"email": "ada@example.com"}, format="json").status_code == 202
    assert api.get("/v4/clients/by-email/nobody@example.com").status_code == 404
    assert client.get("/no/such/page").status_code == 404
    middle = scrape(client)

    # Requests by route template (never the path), method and status, with their latency.
    assert value(middle, "crm_http_requests_total", route="/v4/clients", method="POST", status="202") == (
        value(before, "crm_http_requests_total", route="/v4/clients", method="POST", status="202") + 1
    )
    by_email = {"route": "/v4/clients/by-email/<str:value>", "method": "GET", "status": "404"}
    assert value(middle, "crm_http_requests_total", **by_email) >= 1
    assert value(middle, "crm_http_requests_total", route="<unmatched>", method="GET", status="404") >= 1
    assert not any("nobody@example.com" in str(s.labels) for s in middle["crm_http_requests_total"])
    buckets = [s for s in middle["crm_http_request_duration_seconds_bucket"] if s.labels["route"] == "/v4/clients"]
    assert {s.labels["le"] for s in buckets} >= {"0.001", "0.1", "+Inf"}
    assert value(middle, "crm_http_request_duration_seconds_count", route="/v4/clients", method="POST") >= 1
    # The profile's change waits in the outbox for its subscription.
    assert value(middle, "crm_webhook_outbox_pending", subscription=str(subscription.pk)) == 1
    assert value(middle, "crm_webhook_outbox_oldest_pending_age_seconds", subscription=str(subscription.pk)) >= 0

    # A batch, queued by the API and run by the database worker in this process.
    batch = [{"email": "grace@example.com"}, {"email": "not-an-email"}]
    response = api.post("/v4/clients/batch", json.dumps(batch), content_type="application/json")
    assert response.status_code == 202
    queued = scrape(client)
    assert value(queued, "crm_task_queue_depth", queue="batches") == 1
    assert labelsets(queued, "crm_task_queue_depth", "queue") >= {"default", "batches", "deliveries", "recurring"}
    assert value(queued, "crm_task_queue_oldest_age_seconds", queue="batches") >= 0
    call_command("db_worker", "--batch", "--no-startup-delay", "--queue-name", "batches")

    # The webhook worker's pass delivers both new profiles' messages.
    delivered = 0
    while done := deliver_due():
        delivered += done
    assert delivered == 2 and len(receiver.requests) == 2

    after = scrape(client)
    batch_task = {"queue": "batches", "task": "profiles.tasks.run_profile_batch", "status": "successful"}
    assert (
        value(after, "crm_tasks_finished_total", **batch_task)
        == value(before, "crm_tasks_finished_total", **batch_task) + 1
    )
    assert value(after, "crm_task_duration_seconds_count", queue="batches") >= 1
    assert value(after, "crm_task_queue_depth", queue="batches") == 0
    assert value(after, "crm_webhook_deliveries_total", result="delivered") == (
        value(before, "crm_webhook_deliveries_total", result="delivered") + 2
    )
    assert value(after, "crm_webhook_delivery_duration_seconds_count") >= 2
    assert value(after, "crm_webhook_outbox_pending", subscription=str(subscription.pk)) == 0
    assert value(after, "crm_webhook_outbox_fan_out_pending") == 0

    # The database pool, the segments, the workers, the disk and the build are there too.
    assert value(after, "crm_db_pool_max_connections", alias="default") > 0
    assert labelsets(after, "crm_db_pool_connections", "state") == {"in_use", "idle"}
    assert "crm_db_pool_waits_total" in after and "crm_db_pool_wait_seconds_total" in after
    assert value(after, "crm_segment_refresh_lag_seconds") == 0
    assert "crm_workers_alive" in after and "crm_failures_last_hour" in after
    assert labelsets(after, "crm_disk_used_bytes", "dir") == {"data", "export_spool"}
    assert value(after, "crm_disk_free_bytes", dir="data") > 0
    (build,) = after["crm_build_info"]
    assert build.value == 1 and build.labels["version"] and build.labels["django"].startswith("6.")


@pytest.mark.django_db
def test_rate_limit_rejections_and_import_and_export_rows_are_counted(client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    before = scrape(client)
    _, secret = api_key_create(name="tight", scopes=["read", "write", "export"], rate_limit="2/min")
    limited = APIClient()
    limited.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}", HTTP_API_VERSION="4.4")

    data = "email\nada@example.com\ngrace@example.com\nnot-an-email\n"
    mapping = {"columns": {"email": {"to": "email"}}}
    imp = import_create(file=io.BytesIO(data.encode()), name="f.csv", mapping=mapping, source="tests", actor="system")
    import_run(job_id=imp.pk)

    export = limited.get("/v4/clients/export.csv")
    assert export.status_code == 200
    b"".join(export.streaming_content)  # the rows are counted as the stream is read
    assert limited.get("/v4/clients/by-email/ada@example.com").status_code == 200
    assert limited.get("/v4/clients/by-email/ada@example.com").status_code == 429

    after = scrape(client)
    assert value(after, "crm_rate_limit_rejections_total", policy="key") == (
        value(before, "crm_rate_limit_rejections_total", policy="key") + 1
    )
    assert value(after, "crm_http_requests_total", status="429") >= 1
    assert value(after, "crm_import_rows_total") == value(before, "crm_import_rows_total") + 3
    assert (
        value(after, "crm_export_rows_total", format="csv") == value(before, "crm_export_rows_total", format="csv") + 2
    )


@pytest.mark.django_db
def test_only_a_bearer_of_the_token_or_loopback_reads_the_metrics(client, settings):
    elsewhere = {"REMOTE_ADDR": "203.0.113.7"}
    # No token set: loopback only.
    assert client.get("/metrics").status_code == 200
    refused = client.get("/metrics", **elsewhere)
    assert refused.status_code == 403
    assert refused["Content-Type"] == "application/problem+json"
    assert refused.json()["code"] == "metrics.refused" and "loopback" in refused.json()["detail"]
    assert b"crm_http_requests" not in refused.content

    settings.METRICS_TOKEN = "s3cret-token"
    missing = client.get("/metrics", **elsewhere)
    assert missing.status_code == 401 and missing["WWW-Authenticate"] == 'Bearer realm="metrics"'
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer not-it", **elsewhere)
    assert wrong.status_code == 401 and b"crm_http_requests" not in wrong.content
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer not-it").status_code == 401  # a wrong token, even here
    assert client.get("/metrics", HTTP_AUTHORIZATION="Basic czNjcmV0LXRva2Vu", **elsewhere).status_code == 401
    right = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token", **elsewhere)
    assert right.status_code == 200 and b"crm_http_requests_total" in right.content
    assert right["Cache-Control"] == "no-store"

    # Behind the proxy, the client is the last X-Forwarded-For hop, not the proxy on loopback.
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.7").status_code == 401
    settings.METRICS_ALLOW_LOOPBACK = False
    settings.SECURE_PROXY_SSL_HEADER = None
    assert client.get("/metrics").status_code == 401


@pytest.mark.django_db
def test_openmetrics_is_served_when_asked(client):
    response = client.get("/metrics", HTTP_ACCEPT="application/openmetrics-text; version=1.0.0")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/openmetrics-text")
    assert response.content.rstrip().endswith(b"# EOF")


def test_metrics_is_left_out_of_the_openapi_schema():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    assert "/metrics" not in schema["paths"] and "/health" not in schema["paths"]
    assert "/v4/clients/batch" in schema["paths"]


def _database_url() -> str:
    db = connection.settings_dict
    host = urllib.parse.quote(db["HOST"] or "localhost", safe="")
    return (
        f"postgres://{db['USER']}:{urllib.parse.quote(db['PASSWORD'] or '')}@{host}:{db['PORT'] or 5432}/{db['NAME']}"
    )


@pytest.mark.django_db(transaction=True)
def test_a_worker_process_figures_reach_the_web_process_through_the_multiprocess_directory(api, settings, tmp_path):
    directory = tmp_path / "metrics"
    batch = [{"email": "ada@example.com"}, {"email": "grace@example.com"}, {"email": "lin@example.com"}]
    assert api.post("/v4/clients/batch", json.dumps(batch), content_type="application/json").status_code == 202
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "DJANGO_SETTINGS_MODULE": "crm.settings",
        "DEBUG": "0",
        "PROMETHEUS_MULTIPROC_DIR": str(directory),
    }
    completed = subprocess.run(
        [sys.executable, "manage.py", "db_worker", "--batch", "--no-startup-delay", "--queue-name", "batches"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert any(directory.glob("counter_*.db"))
    # The worker has exited: its live gauges (its pool) are gone, its counters stay in the sums.
    assert not list(directory.glob("gauge_livesum_*.db"))

    settings.METRICS_MULTIPROC_DIR = str(directory)
    body, _ = metrics_exposition()
    samples = parse(body.decode())
    task = {"queue": "batches", "task": "profiles.tasks.run_profile_batch", "status": "successful"}
    assert value(samples, "crm_tasks_finished_total", **task) == 1
    assert value(samples, "crm_db_pool_requests_total", alias="default") >= 1  # the worker's pool, by its file
    assert value(samples, "crm_task_queue_depth", queue="batches") == 0  # and the database gauges, read now
    assert len(samples["crm_build_info"]) == 1


def test_the_live_gauges_of_a_process_that_died_unannounced_are_dropped(tmp_path):
    dead = tmp_path / "gauge_livesum_999999999.db"  # above any pid the kernel hands out
    alive = tmp_path / f"gauge_livesum_{os.getpid()}.db"
    counter = tmp_path / "counter_999999999.db"
    for path in (dead, alive, counter):
        path.write_bytes(b"")
    dead_processes_forget(str(tmp_path))
    assert not dead.exists()
    assert alive.exists() and counter.exists()  # a dead process's counters stay in the sums


@pytest.mark.django_db
def test_a_worker_serves_its_own_figures_on_a_loopback_port(client):
    client.get("/health")  # something of this process's own to see
    server = metrics_port_serve(0)
    try:
        host, port = server.server_address[:2]
        assert host == "127.0.0.1"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
            samples = parse(answer.read().decode())
    finally:
        server.shutdown()
        server.server_close()
    assert value(samples, "crm_http_requests_total", route="/health") >= 1
    assert "crm_db_pool_requests_total" in samples
    assert "crm_task_queue_depth" not in samples  # the database gauges come from the web's /metrics only


def test_a_query_several_families_share_runs_once_per_read(monkeypatch):
    calls = []

    @metrics.read_once
    def backlog():
        calls.append(1)
        return (3, 7.5)

    monkeypatch.setattr(metrics, "_sources", {})
    metrics.gauge_register(name="t_count", documentation="t", read=lambda: [((), backlog()[0])])
    metrics.gauge_register(name="t_age", documentation="t", read=lambda: [((), backlog()[1])])
    readings = {source.name: rows for source, rows in metrics.gauges_read()}
    assert readings == {"t_count": [((), 3.0)], "t_age": [((), 7.5)]} and len(calls) == 1
    metrics.gauges_read()
    assert len(calls) == 2  # the next read asks again
    backlog()
    assert len(calls) == 3  # outside a read every call runs
