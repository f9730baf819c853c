"""Every curl example of Synerise's profile API documentation, replayed (host and credentials changed)."""

import re

import pytest

from profiles.models import Profile

pytestmark = pytest.mark.django_db

SEED_HEADERS = {"HTTP_ACCEPT": "application/json", "HTTP_API_VERSION": "4.4"}


def seed_request(client, method, path, secret, body=None):
    kwargs = {**SEED_HEADERS, "HTTP_AUTHORIZATION": f"Bearer {secret}"}
    if body is not None:
        kwargs.update(data=body, content_type="application/json")
    else:
        kwargs["content_type"] = "application/json"
    return getattr(client, method)(path, **kwargs)


@pytest.fixture
def secret(write_key):
    return write_key[1]


def test_creating_profiles(client, secret):
    response = seed_request(client, "post", "/v4/clients", secret, '{\n   "email": "sampleclient@synerise.com"\n}')
    assert response.status_code == 202
    assert response.content == b""
    assert Profile.objects.filter(email="sampleclient@synerise.com").count() == 1


def test_retrieving_a_single_profile_has_every_field_of_the_seed(client, secret):
    seed_request(client, "post", "/v4/clients", secret, '{"email": "sampleclient@synerise.com"}')
    response = seed_request(client, "get", "/v4/clients/by-email/sampleclient@synerise.com", secret)
    assert response.status_code == 200
    body = response.json()
    seed = {
        "previousClients": [],
        "clientId": 2149203825,
        "email": "sampleclient@synerise.com",
        "phone": None,
        "customId": None,
        "uuid": "24f539a0-d257-11ea-92f0-23c0f0aec77f",
        "firstName": "Sampleclient",
        "lastName": None,
        "displayName": None,
        "company": None,
        "address": None,
        "city": None,
        "province": None,
        "zipCode": None,
        "countryCode": None,
        "birthDate": None,
        "lastActivityDate": "2020-07-30T11:23:51Z",
        "sex": "NOT_SPECIFIED",
        "avatarUrl": "https://www.gravatar.com/avatar/2b13fb10fcb2ff3327a41c3c5dd3d2cd?s=100&r=g&d=blank",
        "anonymous": False,
        "agreements": {
            "email": False,
            "sms": False,
            "push": False,
            "webPush": False,
            "bluetooth": False,
            "rfid": False,
            "wifi": False,
        },
        "attributes": {"eventCreateTime": "2020-07-30T11:23:46.092Z", "correlationId": "D57HkYUzRRu2ImZmjNg-Iw"},
        "tags": [],
    }
    assert list(body) == list(seed)
    for key, value in seed.items():
        assert type(body[key]) is type(value), key
    generated = {"clientId", "uuid", "lastActivityDate", "attributes"}
    assert {k: v for k, v in body.items() if k not in generated} == {
        k: v for k, v in seed.items() if k not in generated
    }
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", body["uuid"])
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", body["lastActivityDate"])
    assert set(body["attributes"]) == {"eventCreateTime", "correlationId"}
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z", body["attributes"]["eventCreateTime"])
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", body["attributes"]["correlationId"])


def test_listing_profiles(client, secret, make_profile):
    make_profile(email="a@example.com")
    make_profile(email="b@example.com")
    response = seed_request(client, "get", "/crm/v1/list", secret)
    assert response.status_code == 200
    emails = {p["email"] for p in response.json()}
    assert emails == {"a@example.com", "b@example.com"}


def test_updating_profiles(client, secret):
    seed_request(client, "post", "/v4/clients", secret, '{"email": "sampleclient@synerise.com"}')
    body = '{\n    "firstName": "John",\n    "lastName": "Smith"\n}'
    response = seed_request(client, "post", "/v4/clients/by-email/sampleclient@synerise.com", secret, body)
    assert response.status_code == 202
    assert response.content == b""
    profile = Profile.objects.get(email="sampleclient@synerise.com")
    assert (profile.first_name, profile.last_name) == ("John", "Smith")


def test_deleting_profiles(client, secret, make_profile):
    profile = make_profile(email="sampleclient@synerise.com")
    response = seed_request(client, "delete", f"/v4/clients/{profile.pk}", secret)
    assert response.status_code == 202
    assert response.content == b""
    # Deleting erases: the clientId answers 410 Gone for good, the e-mail names nobody (404) and may sign up again.
    assert seed_request(client, "get", f"/v4/clients/{profile.pk}", secret).status_code == 410
    assert seed_request(client, "get", "/v4/clients/by-email/sampleclient@synerise.com", secret).status_code == 404
