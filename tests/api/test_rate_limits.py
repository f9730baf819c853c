"""Rate limits: per API key (its own or API_RATE_LIMIT), counted in PostgreSQL or Redis; 429 in the surface's
shape with Retry-After and the IETF RateLimit / RateLimit-Policy fields; per client IP on login and the consent
pages. Request bodies without Content-Length (chunked) meet the size limit too."""

import io
import re
import uuid
from io import StringIO

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from crm.models import ApiKey
from crm.ratelimit import Rate, _counter
from crm.services import api_key_create

CAPILLARY = "/v2/integrations/customer/upsert/bulk"


def client_for(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def test_rates_parse():
    assert Rate.parse("600/min") == Rate(600, 60)
    assert Rate.parse("10/s") == Rate(10, 1) and Rate.parse("5000/hour") == Rate(5000, 3600)
    for bad in ("", "600", "0/min", "ten/min", "5/fortnight"):
        with pytest.raises(ValueError):
            Rate.parse(bad)


@pytest.mark.django_db
def test_a_key_over_its_own_limit_gets_429_with_the_ietf_fields():
    _, secret = api_key_create(name="limited", scopes=["read"], rate_limit="3/day")
    client = client_for(secret)
    answers = [client.get("/v4/clients/by-email/x@example.com") for _ in range(4)]
    assert [a.status_code for a in answers] == [404, 404, 404, 429]
    assert answers[0]["RateLimit-Policy"] == '"key";q=3;w=86400'
    assert re.fullmatch(r'"key";r=2;t=\d+', answers[0]["RateLimit"])
    refused = answers[3]
    assert re.fullmatch(r'"key";r=0;t=\d+', refused["RateLimit"])
    assert int(refused["Retry-After"]) >= 1
    body = refused.json()
    assert body["status"] == 429 and body["code"] == "rate_limited" and body["error"] == "Too Many Requests"
    assert body["message"].endswith(f"retry in {refused['Retry-After']} s.")


@pytest.mark.django_db
def test_429_speaks_each_surface(settings):
    settings.API_RATE_LIMIT = "1/day"
    _, secret = api_key_create(name="one", scopes=["read", "write"])
    es = APIClient()
    es.credentials(HTTP_X_API_KEY=secret)
    es.get("/customers/email/x@example.com")
    refused = es.get("/customers/email/x@example.com")
    assert refused.status_code == 429 and refused["Content-Type"] == "application/problem+json"
    assert refused.json()["status"] == 429
    _, other = api_key_create(name="two", scopes=["read", "write"])
    cap = client_for(other)
    cap.post(CAPILLARY, [], format="json")
    refused = cap.post(CAPILLARY, [], format="json")
    assert refused.status_code == 429 and refused.json()["errors"][0]["code"] == 429


@pytest.mark.django_db
def test_keys_are_counted_apart(settings):
    settings.API_RATE_LIMIT = "2/day"
    clients = [client_for(api_key_create(name="same name", scopes=["read"])[1]) for _ in range(2)]
    for client in clients:
        assert [client.get("/v4/clients/tags").status_code for _ in range(2)] == [200, 200]
    assert clients[0].get("/v4/clients/tags").status_code == 429


@pytest.mark.django_db
def test_redis_counts_when_redis_url_is_set(settings, redis_url):
    settings.REDIS_URL = redis_url  # the test session's own server (tests/conftest.py)
    key, secret = api_key_create(name=f"redis {uuid.uuid4()}", scopes=["read"], rate_limit="2/day")
    client = client_for(secret)
    assert [client.get("/v4/clients/tags").status_code for _ in range(3)] == [200, 200, 429]
    from crm.models import RateLimitCounter

    assert not RateLimitCounter.objects.exists()  # counted in Redis, not in the database
    assert any(k.decode().startswith(f"crm:rl:key:{key.prefix}:") for k in _counter(redis_url).client.keys("crm:rl:*"))


@pytest.mark.django_db
def test_login_is_limited_per_ip(settings):
    settings.LOGIN_RATE_LIMIT = "2/day"
    client = APIClient()
    codes = [
        client.post("/uauth/v2/auth/login/profile", {"apiKey": "nope"}, format="json").status_code for _ in range(3)
    ]
    assert codes == [401, 401, 429]
    other_ip = client.post("/uauth/v2/auth/login/profile", {"apiKey": "nope"}, format="json", REMOTE_ADDR="192.0.2.7")
    assert other_ip.status_code == 401


@pytest.mark.django_db
def test_consent_pages_are_limited_per_ip(client, settings):
    settings.CONSENT_PAGE_RATE_LIMIT = "2/day"
    codes = [client.get("/consents/resign/not-a-token/").status_code for _ in range(3)]
    assert codes[2] == 429 and codes[:2] != [429, 429]
    assert client.get("/consents/confirm/not-a-token/").status_code == 429  # one budget for both pages


@pytest.mark.django_db
def test_create_api_key_takes_a_rate_limit():
    out, err = StringIO(), StringIO()
    call_command("create_api_key", "--name", "shop", "--scopes", "read,write", "--rate-limit", "600/min", stdout=out,
                 stderr=err)  # fmt: skip
    assert ApiKey.objects.get(name="shop").rate_limit == "600/min"
    assert "600/min" in err.getvalue()
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="not a rate"):
        call_command("create_api_key", "--name", "x", "--rate-limit", "lots", stdout=out, stderr=err)


@pytest.mark.django_db
def test_the_admin_sets_a_keys_own_limit(admin_client):
    key, _ = api_key_create(name="edit me", scopes=["read"])
    response = admin_client.post(f"/admin/crm/apikey/{key.pk}/change/", {"rate_limit": "50/min"})
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.rate_limit == "50/min"
    response = admin_client.post(f"/admin/crm/apikey/{key.pk}/change/", {"rate_limit": "fast"})
    assert response.status_code == 200 and "not a rate" in response.text


def test_a_chunked_body_over_the_limit_is_413(api, settings):
    settings.API_MAX_BODY_BYTES = 1000
    body = b'{"email": "big@example.com", "attributes": {"x": "' + b"a" * 2000 + b'"}}'
    response = api.generic(
        "POST",
        "/v4/clients",
        b"",
        content_type="application/json",
        HTTP_TRANSFER_ENCODING="chunked",
        **{"wsgi.input": io.BytesIO(body), "wsgi.input_terminated": True, "CONTENT_LENGTH": ""},
    )
    assert response.status_code == 413, response.content


def test_a_chunked_body_within_the_limit_is_read(api):
    body = b'{"email": "chunk@example.com"}'
    response = api.generic(
        "POST",
        "/v4/clients",
        b"",
        content_type="application/json",
        HTTP_TRANSFER_ENCODING="chunked",
        **{"wsgi.input": io.BytesIO(body), "wsgi.input_terminated": True, "CONTENT_LENGTH": ""},
    )
    assert response.status_code == 202, response.content
    from profiles.models import Profile

    assert Profile.objects.filter(email="chunk@example.com").exists()


def test_a_chunked_body_the_server_did_not_dechunk_is_411(api):
    response = api.generic(
        "POST",
        "/v4/clients",
        b"",
        content_type="application/json",
        HTTP_TRANSFER_ENCODING="chunked",
        **{"wsgi.input": io.BytesIO(b"{}"), "CONTENT_LENGTH": ""},
    )
    assert response.status_code == 411


@pytest.mark.django_db
def test_an_empty_default_leaves_keys_without_their_own_limit_unlimited(settings):
    from crm.models import RateLimitCounter

    settings.API_RATE_LIMIT = ""
    client = client_for(api_key_create(name="free", scopes=["read"])[1])
    response = client.get("/v4/clients/tags")
    assert response.status_code == 200 and not response.has_header("RateLimit")
    assert not RateLimitCounter.objects.exists()


@pytest.mark.django_db
def test_large_limits_are_counted_in_batches_and_small_ones_request_by_request(settings):
    """A process sends its count to the shared counter at most every 1 % of a limit (50 at most), so most
    requests do not wait for a round trip; limits under 200 per window are counted one request at a time."""
    from crm.models import RateLimitCounter
    from crm.ratelimit import rate_limit_hit

    settings.RATE_LIMIT_FLUSH_SECONDS = 3600  # only the batch size flushes here
    bucket = f"batched:{uuid.uuid4()}"
    counts = [rate_limit_hit(bucket=bucket, rate=Rate.parse("10000/day"), policy="key").remaining for _ in range(120)]
    assert counts[-1] == 10000 - 120  # the process's own view is exact
    # The window's first request is sent at once, then a batch of 50 twice; 19 are not sent yet.
    assert RateLimitCounter.objects.get(bucket=bucket).count == 101

    small = f"exact:{uuid.uuid4()}"
    decisions = [rate_limit_hit(bucket=small, rate=Rate.parse("150/day"), policy="key") for _ in range(151)]
    assert RateLimitCounter.objects.get(bucket=small).count == 151
    assert decisions[149].allowed and not decisions[150].allowed
