"""One profile, three surfaces: written through one, read the same through the other two (Synerise,
ExpertSender, Capillary): identifiers, attributes, consents and tags."""

import base64

import pytest
from rest_framework.test import APIClient

from consents.models import Agreement
from profiles.models import Tag

pytestmark = pytest.mark.django_db

CAP = "/v2/integrations/customer/upsert/bulk?skipChangeIdentifier=true"


@pytest.fixture
def clients(write_key):
    secret = write_key[1]
    syn, es, cap = APIClient(), APIClient(), APIClient()
    syn.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}", HTTP_API_VERSION="4.4")
    es.credentials(HTTP_X_API_KEY=secret)
    cap.credentials(HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"{secret}:".encode()).decode())
    return syn, es, cap


def cap_read(cap, email):
    """Capillary documents no GET: an upsert naming only the e-mail changes nothing and returns the customer."""
    response = cap.post(CAP, [{"profiles": [{"identifiers": [{"type": "email", "value": email}]}]}], format="json")
    assert response.status_code == 200
    [item] = response.json()["response"]
    assert item["errors"] == []
    return item["result"]


def test_created_through_expertsender(clients):
    syn, es, cap = clients
    email = Agreement.objects.get(key="email")
    body = {
        "mode": "Add",
        "matchBy": "Email",
        "data": [
            {
                "email": "ann@example.com",
                "phone": "501234567",
                "crmId": "C-1",
                "firstName": "Ann",
                "lastName": "Lee",
                "gender": "Female",
                "customAttributes": [{"name": "shoeSize", "value": "38"}],
                "consentsData": {"consents": [{"id": email.pk, "value": "True"}]},
            }
        ],
    }
    assert es.post("/customers", body, format="json").status_code == 201
    client_id = es.get("/customers/email/ann@example.com").json()["data"]["id"]
    tag = Tag.objects.create(name="vip")
    assert syn.post(f"/v4/clients/{client_id}/tags/{tag.pk}").status_code == 202

    s = syn.get("/v4/clients/by-email/ann@example.com").json()
    assert (s["clientId"], s["email"], s["phone"], s["customId"]) == (
        client_id,
        "ann@example.com",
        "+48501234567",
        "C-1",
    )
    assert (s["firstName"], s["lastName"], s["sex"]) == ("Ann", "Lee", "FEMALE")
    assert s["attributes"]["shoeSize"] == "38"
    assert s["agreements"]["email"] is True and s["agreements"]["sms"] is False
    assert s["tags"] == ["vip"]

    c = cap_read(cap, "ann@example.com")
    assert c["id"] == client_id
    pairs = {(p["type"], p["value"]) for p in c["profiles"][0]["identifiers"]}
    assert pairs == {("email", "ann@example.com"), ("mobile", "48501234567"), ("externalId", "C-1")}
    assert c["profiles"][0]["firstName"] == "Ann"
    assert c["extendedFields"] == {"gender": "Female", "shoeSize": "38"}
    assert c["subscriptionInfo"]["subscriptions"] == [{"channel": "EMAIL", "type": "OPTIN", "priority": "BULK"}]
    # The Capillary write (it named only the e-mail) kept everything, tags included.
    assert syn.get(f"/v4/clients/{client_id}").json()["tags"] == ["vip"]


def test_created_through_capillary(clients):
    syn, es, cap = clients
    body = [
        {
            "profiles": [
                {
                    "firstName": "Raj",
                    "identifiers": [
                        {"type": "email", "value": "raj@example.com"},
                        {"type": "externalId", "value": "EXT-9"},
                        {"type": "mobile", "value": "916360499160"},
                    ],
                    "source": "INSTORE",
                }
            ],
            "extendedFields": {"gender": "Male", "tier": "gold"},
            "subscriptionInfo": {"subscriptions": [{"channel": "SMS", "type": "OPTIN", "priority": "BULK"}]},
        }
    ]
    response = cap.post(CAP, body, format="json")
    client_id = response.json()["response"][0]["entityId"]
    assert client_id

    e = es.get("/customers/crmId/EXT-9").json()["data"]
    assert (e["id"], e["email"], e["phone"], e["firstName"], e["gender"]) == (
        client_id,
        "raj@example.com",
        "+916360499160",
        "Raj",
        "Male",
    )
    attributes = {a["name"]: a["value"] for a in e["customAttributes"]}
    assert attributes == {"tier": "gold", "capillarySource": "INSTORE"}
    sms = Agreement.objects.get(key="sms")
    assert e["consentsData"] == {"consents": [{"id": sms.pk, "value": "True"}]}

    s = syn.get("/v4/clients/by-customId/EXT-9").json()
    assert (s["clientId"], s["email"], s["phone"], s["sex"]) == (client_id, "raj@example.com", "+916360499160", "MALE")
    assert s["attributes"]["tier"] == "gold" and s["agreements"]["sms"] is True


def test_created_through_synerise(clients):
    syn, es, cap = clients
    body = {
        "email": "zoe@example.com",
        "customId": "Z-1",
        "firstName": "Zoe",
        "sex": "FEMALE",
        "attributes": {"points": 12},
        "agreements": {"email": True, "push": False},
    }
    assert syn.post("/v4/clients", body, format="json").status_code == 202
    client_id = syn.get("/v4/clients/by-email/zoe@example.com").json()["clientId"]

    e = es.get(f"/customers/id/{client_id}").json()["data"]
    assert (e["email"], e["crmId"], e["firstName"], e["gender"]) == ("zoe@example.com", "Z-1", "Zoe", "Female")
    assert e["customAttributes"] == [{"name": "points", "value": "12"}]
    values = {c["id"]: c["value"] for c in e["consentsData"]["consents"]}
    ids = dict(Agreement.objects.filter(key__in=["email", "push"]).values_list("key", "pk"))
    assert values == {ids["email"]: "True", ids["push"]: "False"}

    c = cap_read(cap, "zoe@example.com")
    assert c["id"] == client_id
    assert c["extendedFields"] == {"gender": "Female", "points": 12}
    assert {(s["channel"], s["type"]) for s in c["subscriptionInfo"]["subscriptions"]} == {
        ("EMAIL", "OPTIN"),
        ("PUSH", "OPTOUT"),
    }
    # A number written back through ExpertSender as a string keeps its type.
    update = {
        "mode": "Update",
        "matchBy": "Email",
        "data": [{"email": "zoe@example.com", "customAttributes": [{"name": "points", "value": "13"}]}],
    }

    assert es.post("/customers", update, format="json").status_code == 201
    assert syn.get(f"/v4/clients/{client_id}").json()["attributes"]["points"] == 13


def test_schema_documents_both_surfaces(clients):
    syn, _, _ = clients
    response = syn.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = response.json()["paths"] if response["Content-Type"].startswith("application/json") else None
    text = response.content.decode()
    for path in (
        "/customers",
        "/customers/id/{value}",
        "/customers/email/{value}",
        "/customers/phone/{value}",
        "/customers/crmId/{value}",
        "/v2/integrations/customer/upsert/bulk",
    ):
        assert (path in paths) if paths is not None else (f"{path}:" in text), path
    assert "skipChangeIdentifier" in text and "AddOrUpdate" in text and "x-api-key" in text
