"""POST /v4/imports, GET /v4/imports/{id}, GET /v4/imports/{id}/errors.csv."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from crm.models import Job
from imports.models import ImportJob, SavedMapping
from imports.services import import_run
from profiles.models import Profile
from tests.imports.conftest import MAPPING
from tests.imports.test_import_run import CSV


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def upload(api, content=CSV, *, name="people.csv", **fields):
    data = {"file": SimpleUploadedFile(name, content.encode() if isinstance(content, str) else content), **fields}
    if "mapping" not in fields and "mappingName" not in fields:
        data["mapping"] = json.dumps(MAPPING)
    return api.post("/v4/imports", data, format="multipart")


def test_upload_queues_a_job_with_location(api, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        response = upload(api)
    assert response.status_code == 202, response.content
    body = response.json()
    assert response["Location"] == f"/v4/imports/{body['jobId']}"
    assert body["status"] == "queued" and body["file"]["format"] == "csv" and body["file"]["delimiter"] == ";"
    assert len(callbacks) == 1  # the run is enqueued after commit
    imp = ImportJob.objects.get(pk=body["jobId"])
    assert imp.job.actor.startswith("api-key:")
    assert imp.file.storage.exists(imp.file.name)
    import_run(job_id=imp.pk)  # what the worker does
    status = api.get(response["Location"]).json()
    assert status["status"] == "done" and status["counts"]["created"] == 2 and status["errorCount"] == 1
    assert status["progress"]["percent"] == 100.0
    report = api.get(status["reportUrl"])
    assert report.status_code == 200 and report["Content-Type"].startswith("text/csv")
    text = b"".join(report.streaming_content).decode()
    assert text.splitlines()[0] == "line,kind,code,field,message,original"
    assert "not-an-email" in text
    assert Profile.objects.filter(email="ann@example.com").exists()


def test_saved_mapping_and_dry_run(api):
    SavedMapping.objects.create(name="crm", mapping=MAPPING)
    response = upload(api, mappingName="crm", dryRun="true")
    assert response.status_code == 202
    imp = import_run(job_id=response.json()["jobId"])
    assert imp.dry_run and imp.job.counts["created"] == 2
    assert not Profile.objects.exists()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"mapping": "{not json"}, "mapping"),
        ({"mapping": json.dumps({"columns": {"E-mail": {"to": "nickname"}}})}, "mapping.columns.E-mail.to"),
        ({"mapping": json.dumps({"columns": {"First name": {"to": "firstName"}}})}, "mapping.columns"),
        ({"mapping": json.dumps({"columns": {"Missing": {"to": "email"}}})}, "mapping.columns.Missing"),
        ({"mappingName": "nope"}, "mappingName"),
        ({"mapping": json.dumps(MAPPING), "format": "xls"}, "format"),
        ({"mapping": json.dumps(MAPPING), "dryRun": "perhaps"}, "dryRun"),
    ],
)
def test_bad_inputs_are_400_naming_the_field_and_nothing_is_queued(api, fields, field):
    response = upload(api, **fields)
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field
    assert not Job.objects.exists()


def test_missing_file_is_400(api):
    response = api.post("/v4/imports", {"mapping": json.dumps(MAPPING)}, format="multipart")
    assert response.status_code == 400 and response.json()["field"] == "file"


def test_xml_without_record_is_refused(api):
    response = upload(api, "<a/>", name="x.xml", mapping=json.dumps({"columns": {"email": {"to": "email"}}}))
    assert response.status_code == 400 and response.json()["field"] == "mapping.record"


def test_upload_over_its_own_limit_is_413(api, settings):
    settings.IMPORT_MAX_UPLOAD_BYTES = 100
    response = upload(api, CSV * 5)
    assert response.status_code == 413
    assert not Job.objects.exists()


def test_upload_above_the_api_body_limit_is_accepted(api, settings):
    settings.API_MAX_BODY_BYTES = 1000
    content = "email\n" + "".join(f"p{i}@example.com\n" for i in range(200))
    response = upload(api, content, mapping=json.dumps({"columns": {"email": {"to": "email"}}}))
    assert response.status_code == 202


def test_scopes(read_key, api):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {read_key[1]}")
    assert upload(client).status_code == 403
    job_id = upload(api).json()["jobId"]
    assert client.get(f"/v4/imports/{job_id}").status_code == 200
    assert client.get(f"/v4/imports/{job_id}/errors.csv").status_code == 200
    assert APIClient().get(f"/v4/imports/{job_id}").status_code == 401


def test_unknown_job_is_404(api):
    response = api.get("/v4/imports/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404 and response.json()["code"] == "import.not_found"
