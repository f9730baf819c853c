"""POST /integrations/incoming/{slug}: HS256 JWT rules, mapping, RFC 7807 errors, nothing written on failure."""

import time
import uuid

import jwt
import pytest
from django.db import connection
from rest_framework.test import APIClient

from crm.models import Job
from imports.integrations import integration_create, seen_tokens_purge
from imports.models import Integration, SeenToken
from profiles.models import Profile
from profiles.services.batch import profiles_batch_run

MAPPING = {
    "columns": {
        "customer.mail": {"to": "email"},
        "customer.name": {"to": "firstName", "transform": ["title"]},
        "optIn": {"to": "agreements.email"},
        "labels": {"to": "tags"},
    }
}


@pytest.fixture
def integration(db):
    return integration_create(slug="shop", name="Shop", mapping=MAPPING)


def token(secret, **claims):
    now = int(time.time())
    payload = {"iat": now, "exp": now + 300, "jti": str(uuid.uuid4()), **claims}
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, secret, algorithm="HS256")


def post(body, bearer, slug="shop"):
    client = APIClient()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {bearer}"} if bearer else {}
    return client.post(f"/integrations/incoming/{slug}", body, format="json", **headers)


RECORD = {"customer": {"mail": "ann@example.com", "name": "ann"}, "optIn": True, "labels": ["partner"]}


def test_secret_is_stored_encrypted(integration):
    obj, secret = integration
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM imports_integration WHERE id = %s", [obj.pk])
        (stored,) = cursor.fetchone()
    assert secret not in stored and stored.startswith("gAAAA")
    assert Integration.objects.get(pk=obj.pk).secret == secret


def test_a_signed_list_is_queued_as_a_batch_and_written(integration):
    _, secret = integration
    response = post([RECORD, {"customer": {"mail": "bob@example.com"}}], token(secret))
    assert response.status_code == 202, response.content
    job_id = response.json()["jobId"]
    assert response["Location"] == f"/v4/clients/batch/{job_id}"
    job = profiles_batch_run(job_id=job_id)
    assert job.counts["created"] == 2
    ann = Profile.objects.get(email="ann@example.com")
    assert ann.first_name == "Ann" and [t.name for t in ann.tags.all()] == ["partner"]
    assert Job.objects.get(pk=job_id).actor == "import:shop"


def test_one_object_is_accepted(integration):
    _, secret = integration
    assert post(RECORD, token(secret)).status_code == 202


def problem(response, status):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


@pytest.mark.parametrize(
    "make",
    [
        lambda secret: token("another-secret-of-at-least-thirty-two-bytes"),
        lambda secret: token(secret, exp=int(time.time()) - 5),
        lambda secret: token(secret, exp=None),
        lambda secret: token(secret, exp=int(time.time()) + 3600),  # beyond the 10 minutes
        lambda secret: token(secret, iat=int(time.time()) + 120),
        lambda secret: token(secret, jti=None),
        lambda secret: jwt.encode({"exp": int(time.time()) + 60, "jti": "x"}, secret, algorithm="HS512"),
        lambda secret: "not-a-jwt",
        lambda secret: None,
    ],
    ids=["signature", "expired", "no-exp", "exp-too-far", "iat-future", "no-jti", "hs512", "garbage", "none"],
)
@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_bad_tokens_are_401_and_nothing_is_written(integration, make):
    _, secret = integration
    problem(post(RECORD, make(secret)), 401)
    assert not Job.objects.exists()


def test_a_replayed_jti_is_refused(integration):
    _, secret = integration
    bearer = token(secret)
    assert post(RECORD, bearer).status_code == 202
    body = problem(post(RECORD, bearer), 401)
    assert "used already" in body["detail"]
    assert Job.objects.count() == 1


def test_max_age_is_a_setting(integration, settings):
    _, secret = integration
    settings.INTEGRATION_JWT_MAX_AGE_SECONDS = 60
    problem(post(RECORD, token(secret, exp=int(time.time()) + 300)), 401)


def test_a_payload_that_fails_mapping_is_400_naming_the_field(integration):
    _, secret = integration
    body = problem(post([RECORD, {"customer": {"mail": "x"}, "optIn": "maybe"}], token(secret)), 400)
    assert body["field"] == "[1].agreements.email"
    body = problem(post([RECORD, {"customer": {"mail": "not-an-email"}}], token(secret)), 400)
    assert body["field"] == "[1].email"
    body = problem(post({"customer": {"name": "no identifier"}}, token(secret)), 400)
    assert body["field"] == "identifiers"
    assert not Job.objects.exists() and not Profile.objects.exists()


def test_unknown_or_disabled_integration_is_404(integration):
    obj, secret = integration
    problem(post(RECORD, token(secret), slug="nope"), 404)
    Integration.objects.filter(pk=obj.pk).update(enabled=False)
    problem(post(RECORD, token(secret)), 404)


def test_seen_ids_are_kept_until_their_expiry_then_purged(integration):
    _, secret = integration
    assert post(RECORD, token(secret, jti="a")).status_code == 202
    # A short-lived token, though not so short that a loaded machine lets it expire before the request.
    assert post(RECORD, token(secret, jti="b", exp=int(time.time()) + 60)).status_code == 202
    assert SeenToken.objects.count() == 2
    SeenToken.objects.filter(jti="b").update(expires_at="2000-01-01T00:00:00Z")
    assert seen_tokens_purge() == 1
    assert list(SeenToken.objects.values_list("jti", flat=True)) == ["a"]


def test_the_purge_is_a_recurring_task():
    from crm.recurring import recurring_tasks

    assert "imports.tasks.purge_seen_tokens" in {r.task.module_path for r in recurring_tasks()}
