"""Agreements in the Synerise profile API: `agreements`, and custom agreements as attributes."""

import pytest

from consents.models import ConsentRecord, ConsentState
from profiles.models import AttributeDefinition, Profile


def test_agreements_are_written_and_read(api, write_key):
    response = api.post(
        "/v4/clients", {"email": "ann@example.com", "agreements": {"email": True, "sms": False}}, format="json"
    )
    assert response.status_code == 202
    profile = Profile.objects.get(email="ann@example.com")
    document = api.get(f"/v4/clients/{profile.pk}").json()
    assert document["agreements"] == {
        "email": True, "sms": False, "push": False, "webPush": False, "bluetooth": False, "rfid": False, "wifi": False,
    }  # fmt: skip
    record = ConsentRecord.objects.get(client_id=profile.pk, agreement__key="email")
    assert (record.source, record.actor) == ("api", f"api-key:{write_key[0].prefix}")
    assert record.ip_address == "127.0.0.1"  # from the request, through the middleware


def test_custom_agreements_are_attributes(api, alcohol):
    api.post(
        "/v4/clients", {"email": "ann@example.com", "attributes": {"alcohol": True, "shoeSize": 38}}, format="json"
    )
    profile = Profile.objects.get(email="ann@example.com")
    assert profile.attributes == {"shoeSize": 38}
    assert not AttributeDefinition.objects.filter(name="alcohol").exists()
    assert ConsentState.objects.get(profile=profile, agreement=alcohol).status == "granted"

    document = api.get(f"/v4/clients/{profile.pk}").json()
    assert document["attributes"]["alcohol"] is True
    assert document["attributes"]["shoeSize"] == 38
    assert "alcohol" not in document["agreements"]

    api.post(f"/v4/clients/{profile.pk}", {"attributes": {"alcohol": False}}, format="json")
    assert api.get(f"/v4/clients/{profile.pk}").json()["attributes"]["alcohol"] is False
    assert ConsentRecord.objects.filter(client_id=profile.pk, agreement=alcohol).count() == 2


def test_repeating_a_write_adds_no_ledger_record(api):
    body = {"email": "ann@example.com", "agreements": {"email": True}}
    api.post("/v4/clients", body, format="json")
    api.post("/v4/clients", body, format="json")
    assert ConsentRecord.objects.filter(agreement__key="email").count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"agreements": {"email": "yes"}}, "agreements.email"),
        ({"agreements": {"carrierPigeon": True}}, "agreements.carrierPigeon"),
        ({"attributes": {"alcohol": "yes"}}, "attributes.alcohol"),
        ({"agreements": {"sms": True, "alcohol": 1}}, "agreements.alcohol"),
        ({"attributes": {"alcohol": None}}, "attributes.alcohol"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_writes_nothing(api, alcohol, body, field):
    response = api.post("/v4/clients", {"email": "ann@example.com", **body}, format="json")
    assert response.status_code == 400
    assert response.json()["field"] == field
    assert not Profile.objects.exists()
    assert not ConsentRecord.objects.exists()


def test_a_retired_custom_agreement_is_refused(api, alcohol):
    alcohol.is_active = False
    alcohol.save()
    response = api.post("/v4/clients", {"email": "ann@example.com", "attributes": {"alcohol": True}}, format="json")
    assert response.status_code == 400
    assert (response.json()["code"], response.json()["field"]) == ("agreement.retired", "attributes.alcohol")
