"""Authentication: API keys (hashed, scoped) as Bearer, x-api-key or Basic; JWTs from the login endpoint."""

import base64
import time

import jwt
import pytest
from django.test import override_settings

from crm.models import ApiKey
from crm.services import api_key_create

pytestmark = pytest.mark.django_db

PATH = "/v4/clients/by-email/ann@example.com"


@pytest.fixture
def ann(make_profile):
    return make_profile(email="ann@example.com")


def basic(user, password=""):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def assert_401(response):
    assert response.status_code == 401
    body = response.json()
    assert body["status"] == 401
    assert body["message"]
    assert body["path"] == response.wsgi_request.path
    assert "WWW-Authenticate" in response


def test_secret_is_stored_hashed(write_key):
    key, secret = write_key
    stored = ApiKey.objects.get(pk=key.pk)
    assert secret not in {stored.secret_hash, stored.prefix, stored.name}
    assert stored.matches(secret)
    assert not stored.matches(secret + "x")


def test_no_credential_is_401(client, ann):
    assert_401(client.get(PATH))


@pytest.mark.parametrize(
    "header",
    ["Bearer crm_0000000000_wrong", "Bearer nonsense", "Bearer a.b.c", "Basic !!!", "Token abc"],
)
def test_wrong_credential_is_401(client, ann, write_key, header):
    assert_401(client.get(PATH, HTTP_AUTHORIZATION=header))


def test_a_key_with_the_right_prefix_but_wrong_secret_is_401(client, ann, write_key):
    key, _secret = write_key
    assert_401(client.get(PATH, HTTP_AUTHORIZATION=f"Bearer crm_{key.prefix}_not-the-secret"))


@pytest.mark.parametrize("how", ["bearer", "x-api-key", "basic-user", "basic-password"])
def test_key_accepted_in_every_documented_place(client, ann, read_key, how):
    _, secret = read_key
    headers = {
        "bearer": {"HTTP_AUTHORIZATION": f"Bearer {secret}"},
        "x-api-key": {"HTTP_X_API_KEY": secret},
        "basic-user": {"HTTP_AUTHORIZATION": basic(secret)},
        "basic-password": {"HTTP_AUTHORIZATION": basic("anything", secret)},
    }[how]
    response = client.get(PATH, **headers)
    assert response.status_code == 200
    assert response.json()["email"] == "ann@example.com"


def test_inactive_key_is_401(client, ann, read_key):
    key, secret = read_key
    ApiKey.objects.filter(pk=key.pk).update(is_active=False)
    assert_401(client.get(PATH, HTTP_AUTHORIZATION=f"Bearer {secret}"))


def test_read_only_key_writing_is_403(client, ann, read_key):
    _, secret = read_key
    for method, path in [("post", "/v4/clients"), ("post", PATH), ("delete", PATH)]:
        response = getattr(client, method)(
            path,
            data={"email": "x@example.com"},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {secret}",
        )
        assert response.status_code == 403
        assert "write" in response.json()["message"]
    assert not ann.__class__.objects.filter(email="x@example.com").exists()


def test_write_only_key_reading_is_403(client, ann):
    _, secret = api_key_create(name="writer", scopes=["write"])
    assert client.get(PATH, HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 403


def test_admin_scope_allows_everything(client, ann):
    _, secret = api_key_create(name="admin", scopes=["admin"])
    assert client.get(PATH, HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200
    response = client.post(
        "/v4/clients",
        data={"email": "bob@example.com"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    assert response.status_code == 202


def test_last_used_time_is_recorded(client, ann, read_key):
    key, secret = read_key
    assert key.last_used_at is None
    client.get(PATH, HTTP_X_API_KEY=secret)
    key.refresh_from_db()
    assert key.last_used_at is not None


def test_login_exchanges_api_key_for_jwt_usable_as_bearer(client, ann, read_key):
    _, secret = read_key
    response = client.post("/uauth/v2/auth/login/profile", data={"apiKey": secret}, content_type="application/json")
    assert response.status_code == 200
    token = response.json()["token"]
    assert token.count(".") == 2
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 3600
    response = client.get(PATH, HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_API_VERSION="4.4")
    assert response.status_code == 200


def test_login_with_wrong_key_is_401(client):
    response = client.post("/uauth/v2/auth/login/profile", data={"apiKey": "crm_x_y"}, content_type="application/json")
    assert response.status_code == 401
    assert response.json()["message"]
    assert response.json()["field"] == "apiKey"


def test_login_without_key_is_400(client):
    response = client.post("/uauth/v2/auth/login/profile", data={}, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["field"] == "apiKey"


def test_expired_jwt_is_401(client, ann, read_key):
    _, secret = read_key
    with override_settings(JWT_LIFETIME_SECONDS=1):
        token = client.post(
            "/uauth/v2/auth/login/profile", data={"apiKey": secret}, content_type="application/json"
        ).json()["token"]
    time.sleep(2.1)
    assert_401(client.get(PATH, HTTP_AUTHORIZATION=f"Bearer {token}"))


def test_jwt_signed_with_another_key_is_401(client, ann, read_key):
    key, _ = read_key
    forged = jwt.encode(
        {"sub": str(key.pk), "kid": key.prefix, "aud": "crm-api", "exp": int(time.time()) + 60}, "x" * 64
    )
    assert_401(client.get(PATH, HTTP_AUTHORIZATION=f"Bearer {forged}"))


def test_jwt_of_a_deactivated_key_is_401(client, ann, read_key):
    key, secret = read_key
    token = client.post(
        "/uauth/v2/auth/login/profile", data={"apiKey": secret}, content_type="application/json"
    ).json()["token"]
    ApiKey.objects.filter(pk=key.pk).update(is_active=False)
    assert_401(client.get(PATH, HTTP_AUTHORIZATION=f"Bearer {token}"))


def test_a_key_deactivated_elsewhere_stops_working_within_the_cache_time(client, ann, read_key, settings):
    """Keys are cached per process for API_KEY_CACHE_SECONDS: a revocation by another process (a plain
    UPDATE here) is seen within that time; a revocation through the service clears the cache at once."""
    from crm.services import api_key_cache, api_keys_deactivate

    settings.API_KEY_CACHE_SECONDS = 1
    api_key_cache.clear()
    key, secret = read_key
    assert client.get(PATH, HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200
    ApiKey.objects.filter(pk=key.pk).update(is_active=False)
    assert client.get(PATH, HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200  # still cached
    time.sleep(1.1)
    assert_401(client.get(PATH, HTTP_AUTHORIZATION=f"Bearer {secret}"))

    other, other_secret = api_key_create(name="other", scopes=["read"])
    assert client.get(PATH, HTTP_AUTHORIZATION=f"Bearer {other_secret}").status_code == 200
    assert api_keys_deactivate(ids=[other.pk]) == 1
    assert_401(client.get(PATH, HTTP_AUTHORIZATION=f"Bearer {other_secret}"))
    api_key_cache.clear()
