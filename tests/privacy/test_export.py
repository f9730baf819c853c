"""GET /v4/clients/{clientId}/export: everything held about the person, in one JSON document."""

import pytest

from profiles.privacy_registry import registry
from tests.privacy.conftest import CUSTOM_ID, EMAIL, FIRST, PHONE, UUID, VISITOR_UUID

pytestmark = pytest.mark.django_db


def test_the_document_holds_everything_about_the_person(api, person):
    response = api.get(f"/v4/clients/{person.profile.pk}/export")
    assert response.status_code == 200, response.content
    doc = response.json()
    assert set(doc) == {"format", "exportedAt", "clientId"} | {step.name for step in registry.export_steps()}
    assert doc["clientId"] == person.profile.pk
    assert (doc["profile"]["email"], doc["profile"]["first_name"], doc["profile"]["city"]) == (EMAIL, FIRST, "Łódź")
    identifiers = {(i["kind"], i["value"]) for i in doc["identifiers"]}
    assert identifiers == {
        ("email", EMAIL),
        ("phone", PHONE),
        ("customId", CUSTOM_ID),
        ("uuid", UUID),
        ("uuid", VISITOR_UUID),
    }
    assert all(i["firstSeen"] and i["lastSeen"] for i in doc["identifiers"])
    assert doc["attributes"] == {"nickname": f"{FIRST} Q.", "favouriteSport": "curling"}
    assert [t["name"] for t in doc["tags"]] == ["vip"]
    assert {s["agreement"]: s["status"] for s in doc["consents"]["states"]} == {"email": "granted", "sms": "granted"}
    ledger = doc["consents"]["ledger"]
    assert len(ledger) >= 2 and all(r["ipAddress"] == "127.0.0.1" for r in ledger if r["source"] == "api")
    actions = {e["action"] for e in doc["events"]}
    assert {"page.visit", "form.submit", "product.view", "profile.merged", "tag.added"} <= actions
    assert [n["text"] for n in doc["notes"]] == [f"{FIRST} Quarrington called about his order"]
    assert [o["orderId"] for o in doc["orders"]["orders"]] == ["ORD-ZQ-1"]
    assert doc["orders"]["figures"]["totalOrders"] == 1
    assert [m["mergedClientId"] for m in doc["merges"]] == [person.visitor_id]
    assert response["Cache-Control"].startswith("no-store") or "no-store" in response["Cache-Control"]


def test_export_needs_the_read_scope_only(person, read_key):
    from rest_framework.test import APIClient

    _, secret = read_key
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get(f"/v4/clients/{person.profile.pk}/export").status_code == 200


def test_export_follows_a_merged_in_id_and_404s_an_unknown_one(api, person):
    assert api.get(f"/v4/clients/{person.visitor_id}/export").json()["clientId"] == person.profile.pk
    assert api.get("/v4/clients/999999/export").status_code == 404
