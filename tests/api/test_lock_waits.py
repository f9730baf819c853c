"""An API write that meets a row held by a long transaction (an import's dry run, a merge) gives up after
API_LOCK_TIMEOUT_SECONDS: 503 "busy" with Retry-After in the surface's shape, per item where the surface
reports per item; nothing half-written, and the connection's lock_timeout is back to its default afterwards."""

from __future__ import annotations

import base64

import psycopg
import pytest
from django.db import connection
from rest_framework.test import APIClient

from profiles.models import Profile

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def holder(settings):
    """A second session that holds a profile's row, as a dry run holds what it would change."""
    settings.API_LOCK_TIMEOUT_SECONDS = 0.3
    params = connection.get_connection_params()
    params.pop("pool", None)
    params.pop("cursor_factory", None)
    conn = psycopg.connect(**params)

    def hold(profile):
        conn.execute("SELECT id FROM profiles_profile WHERE id = %s FOR UPDATE", [profile.pk])

    hold.release = conn.rollback
    yield hold
    conn.rollback()
    conn.close()


def test_a_synerise_write_on_a_held_profile_is_503_busy_and_writes_nothing(api, make_profile, holder):
    ann = make_profile(email="ann@example.com", first_name="Ann")
    holder(ann)
    response = api.post("/v4/clients", {"email": "ann@example.com", "firstName": "Anna"}, format="json")
    assert response.status_code == 503, response.content
    assert response.json()["code"] == "busy" and "retry" in response.json()["message"]
    assert response["Retry-After"] == "5"
    assert Profile.objects.get(pk=ann.pk).first_name == "Ann"
    with connection.cursor() as cursor:  # the session setting did not outlive the request
        cursor.execute("SHOW lock_timeout")
        assert cursor.fetchone()[0] == "0"


def test_reads_do_not_wait_and_other_profiles_are_written(api, make_profile, holder):
    ann = make_profile(email="ann@example.com")
    holder(ann)
    assert api.get("/v4/clients/by-email/ann@example.com").status_code == 200
    assert api.post("/v4/clients", {"email": "bob@example.com"}, format="json").status_code == 202


def test_capillary_reports_busy_per_item_then_a_retry_goes_through(write_key, make_profile, holder):
    """Capillary's customers are written together, set-based, in one transaction: when it meets the held row each
    of them answers busy (none written: one wait in all, not one per customer); once the row is free, the same
    request goes through."""
    ann = make_profile(email="ann@example.com")
    holder(ann)
    cap = APIClient()
    cap.credentials(HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"{write_key[1]}:".encode()).decode())
    body = [
        {"profiles": [{"firstName": "Anna", "identifiers": [{"type": "email", "value": "ann@example.com"}]}]},
        {"profiles": [{"firstName": "Bob", "identifiers": [{"type": "email", "value": "bob@example.com"}]}]},
    ]
    url = "/v2/integrations/customer/upsert/bulk?skipChangeIdentifier=false"
    response = cap.post(url, body, format="json")
    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["totalCount"] == 2 and answer["failureCount"] == 2, answer
    for item in answer["response"]:
        assert item["entityId"] is None and item["errors"][0]["reason"] == "busy"
        assert "retry" in item["errors"][0]["message"]
    assert Profile.objects.get(pk=ann.pk).first_name != "Anna"
    assert not Profile.objects.filter(email="bob@example.com").exists()

    holder.release()
    again = cap.post(url, body, format="json").json()
    assert again["failureCount"] == 0, again
    assert Profile.objects.get(pk=ann.pk).first_name == "Anna"
    assert Profile.objects.filter(email="bob@example.com", first_name="Bob").exists()


def test_expertsender_answers_503_busy_as_problem_json(write_key, make_profile, holder):
    ann = make_profile(email="ann@example.com")
    holder(ann)
    es = APIClient()
    es.credentials(HTTP_X_API_KEY=write_key[1])
    body = {"mode": "AddOrUpdate", "matchBy": "Email", "data": [{"email": "ann@example.com", "firstName": "Anna"}]}
    response = es.post("/customers", body, format="json")
    assert response.status_code == 503, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    assert response.json()["code"] == "busy" and response["Retry-After"] == "5"
    assert Profile.objects.get(pk=ann.pk).first_name != "Anna"
