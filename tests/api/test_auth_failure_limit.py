"""Failed API key authentications are limited per client address (AUTH_FAILURE_RATE_LIMIT): past the limit each
further failure from the address gets 429 with Retry-After in the surface's shape until the window ends; a valid
key is never held up, and other addresses are not affected. Counted in PostgreSQL, or in Redis when REDIS_URL is set."""

import pytest
from rest_framework.test import APIClient

from crm import ratelimit
from crm.services import api_key_create

LOOKUP = "/v4/clients/by-email/x@example.com"


def client(secret: str, address: str = "203.0.113.7", header: str = "bearer") -> APIClient:
    api = APIClient(REMOTE_ADDR=address)
    if header == "bearer":
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    else:
        api.credentials(HTTP_X_API_KEY=secret)
    return api


@pytest.fixture
def clock(monkeypatch):
    """The rate limiter's clock, at the start of a minute, moved by the test."""
    now = [1_800_000_000.0 - 1_800_000_000.0 % 3600 + 5]
    monkeypatch.setattr(ratelimit.time, "time", lambda: now[0])
    return now


def limited_then_recovered(settings, clock):
    settings.AUTH_FAILURE_RATE_LIMIT = "5/min"
    _, secret = api_key_create(name="right", scopes=["read"])
    wrong = client("crm_live_deadbeef.wrongsecret")
    statuses = [wrong.get(LOOKUP).status_code for _ in range(8)]
    assert statuses == [401] * 5 + [429] * 3
    refused = wrong.get(LOOKUP)
    assert refused.status_code == 429 and int(refused["Retry-After"]) == 55
    body = refused.json()
    assert body["status"] == 429 and body["code"] == "rate_limited" and "failed authentications" in body["message"]
    # The right key from the same address is answered: the count is read only when a key fails.
    assert client(secret).get(LOOKUP).status_code == 404
    # Another address still gets its 401 for a wrong key and its answer for the right one.
    assert client("crm_live_deadbeef.wrongsecret", address="198.51.100.2").get(LOOKUP).status_code == 401
    assert client(secret, address="198.51.100.3").get(LOOKUP).status_code == 404
    # After the window the right key works from the blocked address.
    clock[0] += 60
    assert client(secret).get(LOOKUP).status_code == 404


@pytest.mark.django_db
def test_failures_from_one_address_get_429_counted_in_postgresql(settings, clock):
    settings.REDIS_URL = ""
    limited_then_recovered(settings, clock)


@pytest.mark.django_db
def test_failures_from_one_address_get_429_counted_in_redis(settings, clock, redis_url):
    settings.REDIS_URL = redis_url
    limited_then_recovered(settings, clock)
    assert ratelimit._counter(redis_url).client.keys("crm:rl:auth-failure:203.0.113.7:*")


@pytest.mark.django_db
def test_the_limit_speaks_each_surface(settings):
    settings.AUTH_FAILURE_RATE_LIMIT = "1/hour"
    expertsender = client("wrong-key", header="x-api-key")
    assert expertsender.get("/customers/email/x@example.com").status_code == 401
    refused = expertsender.get("/customers/email/x@example.com")
    assert refused.status_code == 429 and refused["Content-Type"] == "application/problem+json"
    assert refused.json()["status"] == 429 and int(refused["Retry-After"]) >= 1


@pytest.mark.django_db
def test_behind_the_proxy_the_address_is_the_last_hop(settings):
    settings.AUTH_FAILURE_RATE_LIMIT = "2/hour"
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    wrong = client("crm_live_deadbeef.wrongsecret", address="127.0.0.1")
    # The client cannot escape its count by varying the hops it writes itself.
    statuses = [wrong.get(LOOKUP, HTTP_X_FORWARDED_FOR=f"10.0.0.{n}, 192.0.2.9").status_code for n in range(3)]
    assert statuses == [401, 401, 429]
    other = wrong.get(LOOKUP, HTTP_X_FORWARDED_FOR="192.0.2.10")
    assert other.status_code == 401


@pytest.mark.django_db
def test_an_empty_setting_turns_the_limit_off(settings):
    settings.AUTH_FAILURE_RATE_LIMIT = ""
    wrong = client("crm_live_deadbeef.wrongsecret")
    assert {wrong.get(LOOKUP).status_code for _ in range(30)} == {401}
