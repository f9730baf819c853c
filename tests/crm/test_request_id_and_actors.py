"""The request id (X-Request-ID honoured or generated, returned, logged, written onto events and jobs) and
the one actor format (api-key:<prefix>, user:<username>, import:<id>, system)."""

import logging

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser

from crm.actors import SYSTEM, actor_of
from crm.models import Job
from crm.request_id import RequestIdLogFilter, request_id_from_header, request_id_scope
from profiles.models import Event


def test_a_sane_request_id_is_honoured_and_returned(api):
    response = api.get("/v4/clients/by-email/nobody@example.com", HTTP_X_REQUEST_ID="trace-42.a:b")
    assert response["X-Request-ID"] == "trace-42.a:b"


@pytest.mark.parametrize("value", ["", "bad id with spaces", "x" * 200, "a\r\nInjected: 1", "-leading-dash"])
def test_an_insane_request_id_is_replaced_by_a_generated_one(api, value):
    response = api.get("/v4/clients/by-email/nobody@example.com", HTTP_X_REQUEST_ID=value)
    generated = response["X-Request-ID"]
    assert generated != value and len(generated) == 32


def test_every_request_gets_one_even_outside_the_api(client):
    assert len(client.get("/health")["X-Request-ID"]) == 32
    first, second = client.get("/health")["X-Request-ID"], client.get("/health")["X-Request-ID"]
    assert first != second


def test_system_events_carry_the_request_id_and_the_key_prefix_actor(api, write_key):
    key, _ = write_key
    response = api.post(
        "/v4/clients", {"email": "rid@example.com", "firstName": "Ann"}, format="json", HTTP_X_REQUEST_ID="req-1"
    )
    assert response.status_code == 202
    event = Event.objects.get(action="profile.created")
    assert event.request_id == "req-1"
    assert event.actor == f"api-key:{key.prefix}"


def test_a_batch_job_remembers_the_request_and_its_events_carry_it(api, write_key, django_capture_on_commit_callbacks):
    key, _ = write_key
    with django_capture_on_commit_callbacks(execute=False):
        response = api.post("/v4/clients/batch", [{"email": "b1@example.com"}], format="json", HTTP_X_REQUEST_ID="b-9")
    assert response.status_code == 202
    job = Job.objects.get()
    assert job.request_id == "b-9" and job.actor == f"api-key:{key.prefix}"
    from profiles.tasks import run_profile_batch

    run_profile_batch.call(str(job.pk))
    assert Event.objects.get(action="profile.created").request_id == "b-9"


def test_log_records_carry_the_request_id():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    RequestIdLogFilter().filter(record)
    assert record.request_id == "-"
    with request_id_scope("abc"):
        RequestIdLogFilter().filter(record)
    assert record.request_id == "abc"


def test_request_id_from_header():
    assert request_id_from_header("0f1e2d") == "0f1e2d"
    assert len(request_id_from_header(None)) == 32


@pytest.mark.django_db
def test_actor_format(write_key):
    key, _ = write_key
    user = get_user_model().objects.create_user("marta", password="x")
    assert actor_of(key) == f"api-key:{key.prefix}"
    assert actor_of(user) == "user:marta"
    assert actor_of(import_id=7) == "import:7"
    assert actor_of() == SYSTEM == "system"
    assert actor_of(AnonymousUser()) == SYSTEM


def test_actor_display():
    from crm.actors import actor_display

    assert actor_display("user:mia@example.com") == "mia@example.com"
    assert actor_display("api-key:0a1b2c3d4e") == "API key 0a1b2c3d4e"
    assert actor_display("system") == "system" and actor_display("import:3") == "import:3"
