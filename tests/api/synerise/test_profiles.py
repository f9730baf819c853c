"""The Synerise profile endpoints beyond the seed's examples: every lookup path, updates, deletes, errors."""

import json

import pytest
from django.test import override_settings

from consents.models import ConsentState
from profiles.models import AttributeDefinition, Profile

pytestmark = pytest.mark.django_db

UUID = "24f539a0-d257-11ea-92f0-23c0f0aec77f"


@pytest.fixture
def ann(make_profile):
    return make_profile(email="ann@example.com", phone="+48501234567", customId="C-1", uuid=UUID, city="Warsaw")


def assert_error(response, status, field=None):
    assert response.status_code == status, response.content
    body = response.json()
    assert {"status", "error", "message", "path", "timestamp"} <= set(body)
    assert body["status"] == status
    assert body["path"] == response.wsgi_request.path
    if field is not None:
        assert body.get("field") == field, body
    return body


@pytest.mark.parametrize(
    "path",
    [
        "/v4/clients/by-email/ANN@example.com",
        "/v4/clients/by-phone/+48501234567",
        "/v4/clients/by-phone/501234567",
        f"/v4/clients/by-uuid/{UUID.upper()}",
        "/v4/clients/by-customId/C-1",
    ],
)
def test_get_by_every_identifier(api, ann, path):
    response = api.get(path)
    assert response.status_code == 200
    assert response.json()["clientId"] == ann.pk


def test_get_by_client_id(api, ann):
    body = api.get(f"/v4/clients/{ann.pk}").json()
    assert (body["email"], body["phone"], body["customId"], body["uuid"], body["city"]) == (
        "ann@example.com",
        "+48501234567",
        "C-1",
        UUID,
        "Warsaw",
    )


@pytest.mark.parametrize(
    "path",
    ["/v4/clients/999999", "/v4/clients/by-email/nobody@example.com", "/v4/clients/by-customId/nope"],
)
def test_unknown_profile_is_404(api, ann, path):
    body = assert_error(api.get(path), 404)
    assert "No profile" in body["message"]


def test_unknown_path_is_json_404(api):
    assert_error(api.get("/v4/clients/by-nothing/x"), 404)


@pytest.mark.parametrize(
    "path", ["/v4/clients/by-email/ann@example.com", "/v4/clients/by-customId/C-1", "/v4/clients/by-phone/501234567"]
)
def test_update_by_any_path(api, ann, path):
    response = api.post(path, {"lastName": "Nowak", "attributes": {"tier": "gold"}}, format="json")
    assert response.status_code == 202
    ann.refresh_from_db()
    assert (ann.last_name, ann.attributes) == ("Nowak", {"tier": "gold"})


def test_partial_update_null_semantics(api, ann):
    api.post(f"/v4/clients/{ann.pk}", {"sex": "FEMALE", "attributes": {"tier": "gold", "points": 3}}, format="json")
    response = api.post(
        f"/v4/clients/{ann.pk}", {"city": None, "sex": None, "attributes": {"tier": None}}, format="json"
    )
    assert response.status_code == 202
    body = api.get(f"/v4/clients/{ann.pk}").json()
    assert body["city"] is None
    assert body["sex"] == "NOT_SPECIFIED"
    assert body["attributes"]["points"] == 3
    assert "tier" not in body["attributes"]
    assert body["email"] == "ann@example.com"  # untouched: not sent


def test_post_with_existing_identifier_updates(api, ann):
    assert api.post("/v4/clients", {"customId": "C-1", "firstName": "Anna"}, format="json").status_code == 202
    assert Profile.objects.count() == 1
    ann.refresh_from_db()
    assert ann.first_name == "Anna"


def test_agreements_written_and_read(api, ann):
    response = api.post(f"/v4/clients/{ann.pk}", {"agreements": {"email": True, "sms": False}}, format="json")
    assert response.status_code == 202
    agreements = api.get(f"/v4/clients/{ann.pk}").json()["agreements"]
    assert agreements == {
        "email": True,
        "sms": False,
        "push": False,
        "webPush": False,
        "bluetooth": False,
        "rfid": False,
        "wifi": False,
    }
    assert ConsentState.objects.filter(profile=ann).count() == 2


def test_unknown_agreement_is_400_and_nothing_written(api, ann):
    body = assert_error(
        api.post(f"/v4/clients/{ann.pk}", {"city": "Kraków", "agreements": {"fax": True}}, format="json"),
        400,
        "agreements.fax",
    )
    assert "fax" in body["message"]
    ann.refresh_from_db()
    assert ann.city == "Warsaw"


def test_delete_by_identifier(api, ann):
    assert api.delete("/v4/clients/by-customId/C-1").status_code == 202
    # Deleting is erasing: the clientId is a tombstone (410), the customId names nobody (404: it may be reused).
    assert assert_error(api.get(f"/v4/clients/{ann.pk}"), 410, "clientId")["code"] == "profile.erased"
    assert_error(api.delete(f"/v4/clients/{ann.pk}"), 410)
    assert_error(api.get("/v4/clients/by-customId/C-1"), 404)


def test_conflicting_identifiers_are_409_naming_both(api, ann, make_profile):
    bob = make_profile(email="bob@example.com")
    body = assert_error(api.post("/v4/clients", {"email": "bob@example.com", "customId": "C-1"}, format="json"), 409)
    assert body["clientIds"] == sorted([ann.pk, bob.pk])
    assert str(ann.pk) in body["message"] and str(bob.pk) in body["message"]


def test_api_version_header_is_accepted(api, ann):
    assert api.get(f"/v4/clients/{ann.pk}", HTTP_API_VERSION="4.4").status_code == 200


# --- bad input: a 4xx naming the problem, and nothing written ------------------------------------

BAD_BODIES = [
    ({"email": "not-an-email"}, "email"),
    ({"email": "null"}, "email"),
    ({"email": ""}, "email"),
    ({"email": 12}, "email"),
    ({"phone": "12"}, "phone"),
    ({"uuid": "nope"}, "uuid"),
    ({"customId": "  "}, "customId"),
    ({"email": "new@example.com", "sex": "WOMAN"}, "sex"),
    ({"email": "new@example.com", "birthDate": "12/05/1990"}, "birthDate"),
    ({"email": "new@example.com", "birthDate": "1990-02-30"}, "birthDate"),
    ({"email": "new@example.com", "birthDate": "1990-05-12T00:00:00"}, "birthDate"),
    ({"email": "new@example.com", "firstName": ""}, "firstName"),
    ({"email": "new@example.com", "firstName": 5}, "firstName"),
    ({"email": "new@example.com", "countryCode": "Poland"}, "countryCode"),
    ({"email": "new@example.com", "attributes": []}, "attributes"),
    ({"email": "new@example.com", "attributes": {"tier": ""}}, "attributes.tier"),
    ({"email": "new@example.com", "attributes": {"firstName": "x"}}, "attributes.firstName"),
    ({"email": "new@example.com", "agreements": {"email": "yes"}}, "agreements.email"),
    ({"email": "new@example.com", "favouriteColour": "red"}, "favouriteColour"),
    ({"email": "new@example.com", "clientId": 5}, "clientId"),
    ({"firstName": "Nobody"}, "identifiers"),
]


@pytest.mark.parametrize(("body", "field"), BAD_BODIES)
def test_bad_input_is_400_naming_the_field_and_writes_nothing(api, body, field):
    before = Profile.objects.count()
    error = assert_error(api.post("/v4/clients", body, format="json"), 400, field)
    assert error["message"]
    assert Profile.objects.count() == before
    assert not AttributeDefinition.objects.exists()


def test_type_mismatch_names_the_attribute(api, ann):
    api.post(f"/v4/clients/{ann.pk}", {"attributes": {"points": 5}}, format="json")
    body = assert_error(
        api.post(f"/v4/clients/{ann.pk}", {"city": "Gdańsk", "attributes": {"points": "five"}}, format="json"),
        400,
        "attributes.points",
    )
    assert "points" in body["message"] and "number" in body["message"]
    ann.refresh_from_db()
    assert (ann.city, ann.attributes) == ("Warsaw", {"points": 5})


def test_near_duplicate_attribute_names_the_existing_one(api, ann):
    api.post(f"/v4/clients/{ann.pk}", {"attributes": {"ClubMember": True}}, format="json")
    body = assert_error(api.post(f"/v4/clients/{ann.pk}", {"attributes": {"club_member": True}}, format="json"), 400)
    assert body["existing"] == "ClubMember"
    assert "ClubMember" in body["message"]


def test_malformed_json_is_400(api):
    response = api.post("/v4/clients", data='{"email": "a@example.com",', content_type="application/json")
    body = assert_error(response, 400, "body")
    assert "JSON" in body["message"]
    assert not Profile.objects.exists()


@pytest.mark.parametrize("raw", ["[]", '"text"', "null", "42"])
def test_body_that_is_not_an_object_is_400(api, raw):
    assert_error(api.post("/v4/clients", data=raw, content_type="application/json"), 400)


def test_wrong_content_type_is_415(api):
    response = api.post("/v4/clients", data="email=a@example.com", content_type="application/x-www-form-urlencoded")
    assert_error(response, 415)


@override_settings(API_MAX_BODY_BYTES=1000)
def test_body_over_the_size_limit_is_413(api):
    body = json.dumps({"email": "big@example.com", "attributes": {"notes": "x" * 2000}})
    response = api.post("/v4/clients", data=body, content_type="application/json")
    error = assert_error(response, 413)
    assert "1000" in error["message"]
    assert not Profile.objects.exists()


def test_non_numeric_client_id_path_is_404(api):
    assert_error(api.get("/v4/clients/abc"), 404)
