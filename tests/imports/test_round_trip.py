"""Export → import: the CSV export of a set of profiles, imported into an emptied install with the mapping the
detection proposes for our own export, gives the same profiles (fields, attributes with their types, agreements,
tags), compared as their JSON documents."""

import json
import uuid
from datetime import date

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from rest_framework.test import APIClient

from consents.models import Agreement
from crm.services import api_key_create
from imports.services import import_run
from profiles.documents import profile_documents_by_ids
from profiles.models import AttributeDefinition, Profile
from profiles.services import ProfileInput
from profiles.services.batch import profiles_upsert_many

# What only the install that holds a profile decides: its key, its history, when its row was written.
INSTALL_OWN = ("clientId", "previousClients", "lastActivityDate")
INSTALL_OWN_ATTRIBUTES = ("eventCreateTime", "correlationId")
VISITOR = str(uuid.uuid4())


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def exported(**params) -> bytes:
    """``GET /v4/clients/export.csv`` with a key of the export scope."""
    _, secret = api_key_create(name="exports", scopes=["export"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    response = client.get("/v4/clients/export.csv", params)
    assert response.status_code == 200, response.content
    return b"".join(response.streaming_content)


def profiles() -> list[ProfileInput]:
    return [
        ProfileInput(
            identifiers={"email": "ann@example.com", "phone": "+48601234567", "customId": "C-001"},
            fields={
                "first_name": "Ann",
                "last_name": "Kowalska-Nowak",
                "display_name": "Ann K.",
                "company": "=Acme",  # written by the export behind an apostrophe, as a formula start
                "address": "ul. Długa 5\nm. 3",
                "city": "Łódź",
                "province": "łódzkie",
                "zip_code": "00-950",
                "country_code": "PL",
                "birth_date": date(1990, 2, 1),
                "sex": "FEMALE",
            },
            attributes={
                "loyaltyPoints": 120,
                "balance": -5.5,
                "vip": True,
                "memberSince": "2020-05-06",
                "lastSeen": "2024-01-02T03:04:05Z",
                "interests": ["running", "yoga, pilates", 'say "hi"'],
                "favouriteStore": "Kraków, Rynek",
                "formula": "=SUM(A1)",
                "note": "line one\nline two",
            },
            agreements={"email": True, "sms": False, "loyaltyClub": True},
            tags=["vip", 'say "hi"', "Gold, Silver"],
        ),
        ProfileInput(
            identifiers={"email": "bob@example.com"},
            fields={"first_name": "Bob"},
            attributes={"loyaltyPoints": 3, "vip": False, "balance": 0.25},
            agreements={"loyaltyClub": False},
            tags=["newsletter"],
        ),
        ProfileInput(identifiers={"uuid": VISITOR}, attributes={"interests": ["cycling"]}),  # an anonymous visitor
    ]


def documents() -> dict[str, dict]:
    """Every profile's document without what the install alone decides, by uuid."""
    out = {}
    for document in profile_documents_by_ids(list(Profile.objects.values_list("pk", flat=True))):
        for key in INSTALL_OWN:
            document.pop(key)
        for key in INSTALL_OWN_ATTRIBUTES:
            document["attributes"].pop(key)
        out[document["uuid"]] = document
    return out


def empty_the_install() -> None:
    """Profiles with everything they hold, tags and attribute definitions gone (agreements are configuration)."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the test's transaction holds deferred checks
        cursor.execute(
            "TRUNCATE profiles_profile, profiles_tag, profiles_attributedefinition, consents_consentrecord CASCADE"
        )


def test_export_then_import_into_an_empty_install_gives_the_same_profiles(api):
    Agreement.objects.create(key="loyaltyClub", title="Loyalty club")
    results = profiles_upsert_many(items=profiles(), source="tests", actor="system")
    assert [r.status for r in results] == ["created"] * 3, results
    before = documents()
    types_before = dict(AttributeDefinition.objects.values_list("name", "type"))
    assert set(types_before.values()) == {"number", "boolean", "date", "datetime", "list", "string"}

    export = exported(bom="1")  # as a spreadsheet user downloads it
    assert export.startswith(b"\xef\xbb\xbfclientId,")

    empty_the_install()
    assert not Profile.objects.exists() and not AttributeDefinition.objects.exists()

    response = api.post("/v4/imports/detect", {"file": SimpleUploadedFile("profiles.csv", export)}, format="multipart")
    assert response.status_code == 200, response.content
    detected = response.json()
    assert detected["preset"] == "platform-export"
    response = api.post(
        "/v4/imports",
        {"file": SimpleUploadedFile("profiles.csv", export), "mapping": json.dumps(detected["mapping"])},
        format="multipart",
    )
    assert response.status_code == 202, response.content
    imp = import_run(job_id=response.json()["jobId"])
    assert imp.job.counts["created"] == 3 and imp.job.counts["failed"] == 0, imp.job.counts

    after = documents()
    assert after == before
    assert dict(AttributeDefinition.objects.values_list("name", "type")) == types_before
    ann = after[Profile.objects.get(email="ann@example.com").uuid]
    assert ann["tags"] == ["Gold, Silver", 'say "hi"', "vip"] and ann["company"] == "=Acme"
    assert ann["agreements"]["email"] is True and ann["attributes"]["loyaltyClub"] is True
    assert after[VISITOR]["anonymous"] is True


def test_the_proposal_for_our_export_types_attributes_by_this_install_first(api):
    """Where the install knows an attribute, its definition types the column (a text of digits stays text)."""
    profiles_upsert_many(
        items=[ProfileInput(identifiers={"email": "ann@example.com"}, attributes={"postcode": "00950", "n": 7})],
        source="tests",
        actor="system",
    )
    assert AttributeDefinition.objects.get(name="postcode").type == "string"
    columns = api.post(
        "/v4/imports/detect", {"file": SimpleUploadedFile("p.csv", exported())}, format="multipart"
    ).json()["mapping"]["columns"]
    assert columns["attributes.postcode"]["type"] == "string" and columns["attributes.n"]["type"] == "number"
    assert columns["email"] == {"to": "email", "transform": ["apostrophe"]}
    assert columns["tags"] == {"to": "tags", "type": "list"}
    assert columns["agreements.email"]["map"] == {"granted": True, "denied": False, "awaiting_confirmation": None}
    assert "clientId" not in columns and "createdAt" not in columns and "anonymous" not in columns
