"""GET /v4/clients/export.csv and .jsonl: columns, escaping, streaming, filters, changedSince and the export scope."""

import csv
import io
import json
from datetime import datetime, timedelta

import pytest
from django.http import StreamingHttpResponse
from django.utils import timezone
from rest_framework.test import APIClient

from consents.services import consent_set
from crm.services import api_key_create
from profiles.models import Profile, Tag
from profiles.services.tags import tags_add, tags_remove

pytestmark = pytest.mark.django_db

CSV_URL = "/v4/clients/export.csv"
JSONL_URL = "/v4/clients/export.jsonl"


@pytest.fixture
def export_api(db):
    _, secret = api_key_create(name="exporter", scopes=["export"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.fixture
def people(make_profile):
    vip = Tag.objects.create(name="vip")
    ann = make_profile(
        email="ann@example.com",
        first_name="Ann",
        last_name="Nowak",
        city="Warsaw",
        phone="+48501234567",
        attributes={"points": 120, "tier": "gold", "hobbies": ["chess", "golf"]},
        agreements={"email": True},
    )
    eve = make_profile(
        email="eve@example.com",
        first_name="=cmd|' /C calc'!A0",
        last_name="@SUM(1)",
        city="Kraków",
        attributes={"tier": "-1+2", "note": 'quote " and, comma\nnew line'},
    )
    anon = make_profile(uuid="24f539a0-d257-11ea-92f0-23c0f0aec77f")
    tags_add(profiles=[ann, eve], tags=[vip], source="tests")
    tags_add(profiles=[ann], tags=[Tag.objects.create(name="a, b")], source="tests")
    return {"ann": ann, "eve": eve, "anon": anon}


def body(response) -> bytes:
    assert response.status_code == 200, response.content
    assert isinstance(response, StreamingHttpResponse)
    return b"".join(response.streaming_content)


def csv_rows(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(body(response).decode("utf-8"))))


def test_csv_has_every_column_and_one_row_per_profile(export_api, people):
    response = export_api.get(CSV_URL)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="profiles-')
    rows = csv_rows(response)
    assert [int(r["clientId"]) for r in rows] == sorted(p.pk for p in people.values())
    header = list(rows[0])
    native = ["clientId", "email", "phone", "customId", "uuid", "anonymous", "firstName", "lastName", "displayName",
              "company", "address", "city", "province", "zipCode", "countryCode", "birthDate", "sex", "avatarUrl",
              "correlationId", "lastActivityDate", "createdAt", "updatedAt"]  # fmt: skip
    assert set(native) <= set(header)
    assert {"attributes.points", "attributes.tier", "attributes.hobbies", "attributes.note"} <= set(header)
    assert {"agreements.email", "agreements.sms", "tags"} <= set(header)
    ann = next(r for r in rows if r["email"] == "ann@example.com")
    assert ann["firstName"] == "Ann" and ann["city"] == "Warsaw" and ann["anonymous"] == "false"
    assert ann["phone"] == "'+48501234567"  # a leading + is a formula start for a spreadsheet
    assert ann["attributes.points"] == "120" and ann["attributes.tier"] == "gold"
    assert json.loads(ann["attributes.hobbies"]) == ["chess", "golf"]
    assert ann["agreements.email"] == "granted" and ann["agreements.sms"] == ""
    assert json.loads(ann["tags"]) == ["a, b", "vip"]
    # ISO 8601 as PostgreSQL writes it (trailing zeros of the fraction dropped): the same instant.
    assert datetime.fromisoformat(ann["createdAt"]) == people["ann"].created_at
    anon = next(r for r in rows if r["uuid"] == "24f539a0-d257-11ea-92f0-23c0f0aec77f")
    assert anon["anonymous"] == "true" and anon["email"] == "" and anon["tags"] == ""


def test_csv_is_formula_safe_and_quotes_what_needs_quoting(export_api, people):
    eve = next(r for r in csv_rows(export_api.get(CSV_URL)) if r["email"] == "eve@example.com")
    assert eve["firstName"] == "'=cmd|' /C calc'!A0" and eve["lastName"] == "'@SUM(1)"
    assert eve["attributes.tier"] == "'-1+2"
    assert eve["attributes.note"] == 'quote " and, comma\nnew line'


def test_bom_on_request_only(export_api, people):
    assert not body(export_api.get(CSV_URL)).startswith(b"\xef\xbb\xbf")
    data = body(export_api.get(CSV_URL, {"bom": "1"}))
    assert data.startswith(b"\xef\xbb\xbfclientId,") and "Kraków".encode() in data
    assert export_api.get(CSV_URL, {"bom": "maybe"}).json()["field"] == "bom"


def test_the_lists_filters_apply(export_api, people):
    rows = csv_rows(export_api.get(CSV_URL, {"city": "warsaw"}))
    assert [r["email"] for r in rows] == ["ann@example.com"]
    rows = csv_rows(export_api.get(CSV_URL, {"filters[attributes.tier]": "gold"}))
    assert [r["email"] for r in rows] == ["ann@example.com"]
    rows = csv_rows(export_api.get(CSV_URL, {"tags": "vip", "email": "EVE@example.com"}))
    assert [r["email"] for r in rows] == ["eve@example.com"]
    response = export_api.get(CSV_URL, {"tags": "no-such-tag"})
    assert response.status_code == 404 or response.status_code == 400
    assert response.json()["field"] == "tags"


def test_jsonl_is_the_synerise_document_per_line(export_api, api, people):
    response = export_api.get(JSONL_URL, {"tags": "vip"})
    assert response["Content-Type"] == "application/x-ndjson; charset=utf-8"
    lines = body(response).decode().splitlines()
    documents = [json.loads(line) for line in lines]
    assert [d["clientId"] for d in documents] == sorted([people["ann"].pk, people["eve"].pk])
    assert documents[0] == api.get(f"/v4/clients/{people['ann'].pk}").json()


def test_streams_in_pieces_in_id_order(export_api, make_profile, monkeypatch):
    import exports.stream

    monkeypatch.setattr(exports.stream, "CHUNK_BYTES", 200)
    monkeypatch.setattr(exports.stream, "JSONL_CHUNK", 3)
    made = [make_profile() for _ in range(10)]
    pieces = list(export_api.get(CSV_URL).streaming_content)
    assert len(pieces) > 3
    rows = list(csv.DictReader(io.StringIO(b"".join(pieces).decode())))
    assert [int(r["clientId"]) for r in rows] == [p.pk for p in made]
    pieces = list(export_api.get(JSONL_URL).streaming_content)
    assert len(pieces) == 4
    assert [json.loads(line)["clientId"] for piece in pieces for line in piece.decode().splitlines()] == [
        p.pk for p in made
    ]


def _backdate(*profiles):
    Profile.objects.filter(pk__in=[p.pk for p in profiles]).update(updated_at=timezone.now() - timedelta(days=2))


def _changed(export_api, since) -> set[int]:
    rows = csv_rows(export_api.get(CSV_URL, {"changedSince": since.isoformat()}))
    return {int(r["clientId"]) for r in rows}


def test_changed_since_catches_field_attribute_tag_and_consent_changes(export_api, people, api, email_agreement):
    ann, eve, anon = people["ann"], people["eve"], people["anon"]
    _backdate(ann, eve, anon)
    since = timezone.now() - timedelta(days=1)
    assert _changed(export_api, since) == set()
    tags_remove(profiles=[eve], tags=[Tag.objects.get(name="vip")], source="tests")
    assert _changed(export_api, since) == {eve.pk}
    _backdate(eve)
    tags_add(profiles=[anon], tags=[Tag.objects.get(name="vip")], source="tests")
    assert _changed(export_api, since) == {anon.pk}
    _backdate(anon)
    consent_set(profile=ann, agreement=email_agreement, state="denied", source="tests", actor="tests")
    assert _changed(export_api, since) == {ann.pk}
    _backdate(ann)
    assert api.post(f"/v4/clients/{eve.pk}", {"attributes": {"tier": "silver"}}, format="json").status_code == 202
    assert _changed(export_api, since) == {eve.pk}
    _backdate(eve)
    assert api.post(f"/v4/clients/{anon.pk}", {"firstName": "Zoe"}, format="json").status_code == 202
    assert _changed(export_api, since) == {anon.pk}
    rows = csv_rows(export_api.get(CSV_URL, {"changedSince": "2000-01-01T00:00:00"}))
    assert len(rows) == 3
    response = export_api.get(CSV_URL, {"changedSince": "yesterday"})
    assert response.status_code == 400 and response.json()["field"] == "changedSince"


def test_the_export_scope_guards_it(people, read_key, write_key):
    client = APIClient()
    for _, secret in (read_key, write_key):
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        for url in (CSV_URL, JSONL_URL):
            response = client.get(url)
            assert response.status_code == 403
            assert "export" in response.json()["message"]
    client.credentials()
    assert client.get(CSV_URL).status_code == 401
    _, admin_secret = api_key_create(name="admin", scopes=["admin"])
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {admin_secret}")
    assert client.get(CSV_URL).status_code == 200
    _, export_secret = api_key_create(name="export only", scopes=["export"])
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {export_secret}")
    assert client.get("/v4/clients").status_code == 403  # export is not read


def test_an_unknown_segment_is_a_clear_error(export_api, people):
    response = export_api.get(CSV_URL, {"segment": "7"})
    assert response.status_code == 404 and response.json()["field"] == "segment"
    assert export_api.get(CSV_URL, {"segment": "x"}).status_code == 400


def test_accept_header_does_not_matter(export_api, people):
    response = export_api.get(CSV_URL, HTTP_ACCEPT="text/csv")
    assert len(csv_rows(response)) == 3
    response = export_api.get(CSV_URL, {"city": "x", "createdFrom": "nonsense"}, HTTP_ACCEPT="text/csv")
    assert response.status_code == 400 and response["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("value", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "2026-13-01T00:00"])
def test_changed_since_at_the_calendars_edge_is_a_400_or_an_answer_never_a_500(export_api, people, value):
    assert export_api.get(CSV_URL, {"changedSince": value}).status_code in (200, 400)


@pytest.mark.django_db(transaction=True)  # as in production: autocommit, the COPY cancelled on its own
def test_a_client_that_goes_away_leaves_the_connection_usable(export_api, make_profile, monkeypatch):
    import exports.stream

    monkeypatch.setattr(exports.stream, "CHUNK_BYTES", 100)
    for _ in range(30):
        make_profile()
    response = export_api.get(CSV_URL)
    pieces = iter(response.streaming_content)
    next(pieces), next(pieces)
    response.close()  # the WSGI server closes the response when the client disconnects
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM profiles_profile")
        assert cursor.fetchone()[0] == 30
