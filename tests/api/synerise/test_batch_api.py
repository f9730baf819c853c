"""POST /v4/clients/batch → a job run by the real worker; GET /v4/clients/batch/{jobId}."""

import json
import os
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
from django.db import connection
from django.test import override_settings

from crm.models import Job
from profiles.models import Profile
from profiles.services.batch import profiles_batch_run

ROOT = Path(__file__).resolve().parents[3]
SEED_BATCH = """[
   {
      "email": "newclient@synerise.com"
   },
   {
      "customId": "newClientCustomId"
   },
   {
      "email": "sampleclient@synerise.com",
      "firstName": "Michael"
   }
]"""


def run_worker():
    """Run the real database worker over the test database until the queue is empty."""
    db = connection.settings_dict
    host = urllib.parse.quote(db["HOST"] or "localhost", safe="")
    url = f"postgres://{db['USER']}:{urllib.parse.quote(db['PASSWORD'] or '')}@{host}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "crm.settings", "DEBUG": "0"}
    completed = subprocess.run(
        [sys.executable, "manage.py", "db_worker", "--batch", "--no-startup-delay"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed


@pytest.mark.django_db(transaction=True)
def test_seed_batch_example_runs_on_the_real_worker(api, make_profile):
    existing = make_profile(email="sampleclient@synerise.com")
    response = api.post("/v4/clients/batch", data=SEED_BATCH, content_type="application/json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "queued"
    assert response["Location"] == f"/v4/clients/batch/{body['jobId']}"
    assert not Profile.objects.filter(email="newclient@synerise.com").exists()  # queued, not done

    run_worker()

    status = api.get(response["Location"]).json()
    assert status["status"] == "done", status
    assert status["counts"] == {"created": 2, "updated": 1, "merged": 0, "unchanged": 0, "failed": 0}
    assert status["errors"] == []
    assert Profile.objects.get(pk=existing.pk).first_name == "Michael"
    assert Profile.objects.filter(custom_id="newClientCustomId").exists()


@pytest.mark.django_db
def test_bad_items_are_reported_per_item_and_the_others_applied(api, django_capture_on_commit_callbacks):
    items = [{"email": "ok@example.com"}, {"email": "not-an-email"}, "text", {"email": "b@example.com", "sex": "X"}]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = api.post("/v4/clients/batch", items, format="json")
    assert response.status_code == 202
    assert len(callbacks) == 1  # enqueued after commit
    job = profiles_batch_run(job_id=response.json()["jobId"])
    assert job.counts == {"created": 1, "updated": 0, "merged": 0, "unchanged": 0, "failed": 3}
    assert [(e["index"], e["field"]) for e in job.errors] == [(1, "email"), (2, "[2]"), (3, "sex")]
    assert all(e["code"] and e["message"] for e in job.errors)
    assert list(Profile.objects.values_list("email", flat=True)) == ["ok@example.com"]
    again = profiles_batch_run(job_id=job.pk)  # running a job again is safe
    assert again.counts["unchanged"] == 1 and again.counts["created"] == 0
    assert Profile.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "status", "field"),
    [({"email": "a@example.com"}, 400, "body"), ([], 400, "body"), ("[1,", 400, "body")],
)
def test_bad_batch_shapes_are_refused_before_anything_is_queued(api, body, status, field):
    data = body if isinstance(body, str) else json.dumps(body)
    response = api.post("/v4/clients/batch", data=data, content_type="application/json")
    assert response.status_code == status
    assert response.json()["field"] == field
    assert not Job.objects.exists()


@pytest.mark.django_db
@override_settings(BATCH_MAX_ITEMS=2)
def test_too_many_items_is_413(api):
    response = api.post("/v4/clients/batch", [{"email": f"{i}@example.com"} for i in range(3)], format="json")
    assert response.status_code == 413
    assert "2" in response.json()["message"]
    assert not Job.objects.exists()


@pytest.mark.django_db
@override_settings(BATCH_MAX_BYTES=200)
def test_too_large_body_is_413(api):
    response = api.post("/v4/clients/batch", [{"email": f"{i}@example.com"} for i in range(20)], format="json")
    assert response.status_code == 413
    assert not Job.objects.exists()


@pytest.mark.django_db
def test_unknown_job_is_404(api):
    response = api.get("/v4/clients/batch/00000000-0000-4000-8000-000000000000")
    assert response.status_code == 404
    assert response.json()["field"] == "jobId"


@pytest.mark.django_db
def test_a_job_reports_older_consent_decisions_as_warnings(api, django_capture_on_commit_callbacks):
    from datetime import timedelta

    from django.utils import timezone

    from consents.models import ConsentState
    from profiles.services import ProfileInput
    from profiles.services.batch import profiles_batch_submit

    withdrawn = timezone.now() - timedelta(hours=1)
    newer = ProfileInput(
        identifiers={"email": "ann@example.com"}, agreements={"email": False}, agreements_decided_at=withdrawn
    )
    late = ProfileInput(
        identifiers={"email": "ann@example.com"},
        agreements={"email": True},
        agreements_decided_at=withdrawn - timedelta(days=2),
    )
    with django_capture_on_commit_callbacks(execute=False):
        first = profiles_batch_submit(items=[newer], source="import", actor="import:1")
        second = profiles_batch_submit(items=[late], source="import", actor="import:2")
    assert profiles_batch_run(job_id=first.pk).warnings == []
    profiles_batch_run(job_id=second.pk)

    status = api.get(f"/v4/clients/batch/{second.pk}").json()
    assert status["status"] == "done" and status["errors"] == []
    assert status["counts"]["unchanged"] == 1
    assert [(w["index"], w["code"], w["field"]) for w in status["warnings"]] == [
        (0, "consent.stale", "agreements.email")
    ]
    assert ConsentState.objects.get(profile__email="ann@example.com").status == "denied"  # the newer withdrawal stays
    assert api.get(f"/v4/clients/batch/{first.pk}").json()["warnings"] == []


@pytest.mark.django_db
def test_the_schema_documents_the_job_warnings(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json", format="json")
    assert schema.status_code == 200
    text = schema.content.decode()
    assert "BatchJob" in text
    import yaml

    document = yaml.safe_load(text)
    assert "warnings" in document["components"]["schemas"]["BatchJob"]["properties"]
