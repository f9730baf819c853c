"""POST /v4/imports/detect: what a file is and the mapping proposed for it, which POST /v4/imports takes as it is."""

import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from openpyxl import Workbook
from rest_framework.test import APIClient

from consents.models import ConsentState
from crm.models import Job
from imports.services import import_run
from profiles.models import Profile
from tests.imports.test_presets import MAILCHIMP_SUBSCRIBED, SHOPIFY


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def detect(api, content, name="export.csv", **fields):
    data = content.encode() if isinstance(content, str) else content
    return api.post("/v4/imports/detect", {"file": SimpleUploadedFile(name, data), **fields}, format="multipart")


def test_detect_then_import_with_the_proposed_mapping_as_it_is(api):
    response = detect(api, MAILCHIMP_SUBSCRIBED, "subscribed_members_export_1a2b3c.csv")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["format"] == "csv" and body["encoding"] == "utf-8" and body["delimiter"] == ","
    assert body["sheet"] is None
    assert body["header"][:3] == ["Email Address", "First Name", "Last Name"]
    assert len(body["rows"]) == 3 and body["rows"][0]["TAGS"] == '"Customer","VIP Club"'
    assert body["preset"] == "mailchimp" and body["presetLabel"] == "Mailchimp audience export"
    assert body["mapping"]["columns"]["TAGS"] == {"to": "tags", "split": ","}
    assert not Job.objects.exists()  # nothing kept

    upload = SimpleUploadedFile("subscribed_members_export_1a2b3c.csv", MAILCHIMP_SUBSCRIBED.encode())
    response = api.post("/v4/imports", {"file": upload, "mapping": json.dumps(body["mapping"])}, format="multipart")
    assert response.status_code == 202, response.content
    imp = import_run(job_id=response.json()["jobId"])
    assert imp.job.counts["created"] == 2 and imp.job.counts["failed"] == 1
    ann = Profile.objects.get(email="ann@example.com")
    assert sorted(t.name for t in ann.tags.all()) == ["Customer", "VIP Club"]
    assert ConsentState.objects.get(profile=ann, agreement__key="email").status == "granted"


def test_detect_an_xlsx_sheet_by_name(api):
    book = Workbook()
    book.active.title = "Notes"
    sheet = book.create_sheet("Customers")
    header = SHOPIFY.splitlines()[0].split(",")
    sheet.append(header)
    sheet.append(["'7210448301122", "Teo", "V", "teo@example.com", "yes", *[""] * (len(header) - 5)])
    out = io.BytesIO()
    book.save(out)
    response = detect(api, out.getvalue(), "customers.xlsx", sheet="Customers")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["format"] == "xlsx" and body["encoding"] is None and body["delimiter"] is None
    assert body["preset"] == "shopify" and body["mapping"]["sheet"] == "Customers"
    upload = SimpleUploadedFile("customers.xlsx", out.getvalue())
    response = api.post("/v4/imports", {"file": upload, "mapping": json.dumps(body["mapping"])}, format="multipart")
    assert response.status_code == 202, response.content
    assert response.json()["file"]["format"] == "xlsx"
    import_run(job_id=response.json()["jobId"])
    assert Profile.objects.get(email="teo@example.com").attributes["shopifyCustomerId"] == "7210448301122"


@pytest.mark.parametrize(
    ("content", "name", "fields", "field"),
    [
        (b"a,b\n1,2\n", "x.csv", {"format": "xls"}, "format"),
        (b"a,b\n1,2\n", "x.csv", {"delimiter": ";;"}, "delimiter"),
        (b"a,b\n1,2\n", "x.csv", {"encoding": "no-such-encoding"}, "file"),
        (b"<people><p><email>a@example.com</email></p></people>", "x.xml", {}, "record"),
        (b'{"not": "an array"}', "x.json", {}, "file"),
        (b"not a workbook", "x.xlsx", {}, "file"),
        (b"", "x.csv", {}, "file"),
    ],
)
def test_what_cannot_be_read_is_a_400_naming_the_field(api, content, name, fields, field):
    response = detect(api, content, name, **fields)
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field


def test_a_missing_sheet_and_a_missing_file(api):
    out = io.BytesIO()
    Workbook().save(out)
    response = detect(api, out.getvalue(), "book.xlsx", sheet="Nope")
    assert response.status_code == 400 and response.json()["field"] == "sheet"
    assert "Sheet" in response.json()["message"]
    response = api.post("/v4/imports/detect", {"format": "csv"}, format="multipart")
    assert response.status_code == 400 and response.json()["field"] == "file"


def test_detect_needs_the_write_scope(read_key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {read_key[1]}")
    upload = SimpleUploadedFile("x.csv", b"email\na@example.com\n")
    response = client.post("/v4/imports/detect", {"file": upload}, format="multipart")
    assert response.status_code == 403
