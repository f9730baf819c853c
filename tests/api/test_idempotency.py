"""Idempotency-Key on POSTs: repeats within 24 h get the first answer and change nothing."""

from datetime import timedelta

import pytest
from django.utils import timezone

from crm.models import IdempotencyRecord, Job
from profiles.models import Profile

pytestmark = pytest.mark.django_db


def post(api, path, body, key):
    return api.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_a_repeat_returns_the_first_answer_and_changes_nothing(api, make_profile):
    profile = make_profile(email="ann@example.com")
    first = post(api, f"/v4/clients/{profile.pk}", {"city": "Warsaw"}, "k-1")
    assert first.status_code == 202
    Profile.objects.filter(pk=profile.pk).update(city="Kraków")  # changed by someone else meanwhile
    repeat = post(api, f"/v4/clients/{profile.pk}", {"city": "Warsaw"}, "k-1")
    assert repeat.status_code == 202
    assert repeat["Idempotent-Replayed"] == "true"
    assert Profile.objects.get(pk=profile.pk).city == "Kraków"  # the repeat did not write


def test_batch_repeat_returns_the_same_job(api):
    first = post(api, "/v4/clients/batch", [{"email": "a@example.com"}], "batch-1")
    repeat = post(api, "/v4/clients/batch", [{"email": "a@example.com"}], "batch-1")
    assert repeat.status_code == 202
    assert repeat.json()["jobId"] == first.json()["jobId"]
    assert repeat["Location"] == first["Location"]
    assert Job.objects.count() == 1


def test_the_same_key_with_another_body_is_422(api):
    post(api, "/v4/clients", {"email": "a@example.com"}, "k-2")
    response = post(api, "/v4/clients", {"email": "b@example.com"}, "k-2")
    assert response.status_code == 422
    assert response.json()["field"] == "Idempotency-Key"
    assert not Profile.objects.filter(email="b@example.com").exists()


def test_a_key_recorded_for_another_request_is_422(api, write_key):
    key, _ = write_key
    IdempotencyRecord.objects.create(key="k-3", scope=key.prefix, request_hash="x")
    response = post(api, "/v4/clients", {"email": "a@example.com"}, "k-3")
    assert response.status_code == 422  # the stored fingerprint differs from this request's


def test_in_flight_detection_uses_the_request_fingerprint(api, write_key):
    from crm.idempotency import request_hash

    key, _ = write_key
    body = b'{"email":"a@example.com"}'
    fingerprint = request_hash(method="POST", path="/v4/clients", body=body)
    IdempotencyRecord.objects.create(key="k-4", scope=key.prefix, request_hash=fingerprint)
    response = api.post("/v4/clients", data=body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k-4")
    assert response.status_code == 409
    assert response.json()["code"] == "idempotency.in_flight"
    assert not Profile.objects.exists()


def test_keys_expire_after_a_day(api, write_key):
    post(api, "/v4/clients", {"email": "a@example.com"}, "k-5")
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=25))
    response = post(api, "/v4/clients", {"email": "b@example.com"}, "k-5")
    assert response.status_code == 202
    assert Profile.objects.filter(email="b@example.com").exists()


def test_keys_are_per_api_key(api, anon_api, read_key):
    from crm.services import api_key_create

    _, other = api_key_create(name="other", scopes=["write"])
    post(api, "/v4/clients", {"email": "a@example.com"}, "shared")
    anon_api.credentials(HTTP_AUTHORIZATION=f"Bearer {other}")
    response = post(anon_api, "/v4/clients", {"email": "b@example.com"}, "shared")
    assert response.status_code == 202
    assert "Idempotent-Replayed" not in response
    assert Profile.objects.filter(email="b@example.com").exists()


def test_errors_are_replayed_too(api):
    first = post(api, "/v4/clients", {"email": "null"}, "k-6")
    repeat = post(api, "/v4/clients", {"email": "null"}, "k-6")
    assert first.status_code == repeat.status_code == 400
    assert repeat.json()["message"] == first.json()["message"]
