"""/v4/webhooks: admin scope, Synerise's error shape, the secret shown once, the message log and resends."""

import pytest
from rest_framework.test import APIClient

from crm.services import api_key_create
from webhooks.delivery import deliver_due
from webhooks.models import Message, Subscription

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_api(allow_private):
    _, secret = api_key_create(name="tests (admin)", scopes=["read", "write", "admin"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def test_create_shows_the_secret_once_and_stores_it_encrypted(admin_api, receiver):
    response = admin_api.post(
        "/v4/webhooks", {"url": receiver.url, "events": ["profile.created", "tag.added"]}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["secret"].startswith("whsec_")
    assert (body["events"], body["segment"], body["ignoreKeys"], body["enabled"]) == (
        ["profile.created", "tag.added"], None, [], True
    )  # fmt: skip
    listed = admin_api.get("/v4/webhooks").json()
    assert [s["id"] for s in listed] == [body["id"]] and "secret" not in listed[0]
    assert "secret" not in admin_api.get(f"/v4/webhooks/{body['id']}").json()
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM webhooks_subscription WHERE id = %s", [body["id"]])
        stored = cursor.fetchone()[0]
    assert body["secret"] not in stored and stored.startswith("gAAAA")  # a Fernet token
    assert Subscription.objects.get().secret == body["secret"]


def test_the_admin_scope_is_required(api, receiver):
    response = api.get("/v4/webhooks")
    assert response.status_code == 403
    assert set(response.json()) >= {"status", "error", "message", "path", "timestamp"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": ["profile.created"]}, "url"),
        ({"url": "http://x.example/", "events": []}, "events"),
        ({"url": "http://x.example/", "events": ["profile.exploded"]}, "events[0]"),
        ({"url": "http://x.example/", "events": ["tag.added"], "ignoreKeys": ["crm_x"]}, "ignoreKeys[0]"),
        ({"url": "http://x.example/", "events": ["tag.added"], "segment": 12}, "segment"),
        ({"url": "http://x.example/", "events": ["tag.added"], "enabled": "yes"}, "enabled"),
    ],
)
def test_bad_subscriptions_get_a_400_naming_the_field(admin_api, body, field, monkeypatch):
    from tests.webhooks.test_targets import PUBLIC, fake_dns

    fake_dns(monkeypatch, {"x.example": PUBLIC})
    response = admin_api.post("/v4/webhooks", body, format="json")
    assert response.status_code in (400, 404), response.content
    assert response.json()["field"] == field
    assert Subscription.objects.count() == 0


def test_a_private_target_is_refused_without_the_switch(admin_api, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
    response = admin_api.post("/v4/webhooks", {"url": "http://127.0.0.1:9/", "events": ["tag.added"]}, format="json")
    assert response.status_code == 400
    assert response.json()["field"] == "url"
    assert response.json()["code"] == "webhook_target_refused"


def test_put_replaces_and_reenables_delete_removes(admin_api, receiver):
    created = admin_api.post("/v4/webhooks", {"url": receiver.url, "events": ["tag.added"]}, format="json").json()
    Subscription.objects.filter(pk=created["id"]).update(
        enabled=False, disabled_reason="The receiver answered 410 Gone."
    )
    response = admin_api.put(
        f"/v4/webhooks/{created['id']}",
        {"url": receiver.url + "2", "events": ["tag.removed"], "ignoreKeys": ["ab12cd34"], "enabled": True},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["url"], body["events"], body["ignoreKeys"], body["enabled"], body["disabledReason"]) == (
        receiver.url + "2", ["tag.removed"], ["ab12cd34"], True, ""
    )  # fmt: skip
    assert admin_api.delete(f"/v4/webhooks/{created['id']}").status_code == 204
    assert admin_api.get(f"/v4/webhooks/{created['id']}").status_code == 404


def test_the_message_log_pages_with_a_cursor_and_shows_attempts(admin_api, receiver, make_profile):
    created = admin_api.post("/v4/webhooks", {"url": receiver.url, "events": ["profile.created"]}, format="json")
    webhook = created.json()["id"]
    for i in range(3):
        make_profile(email=f"p{i}@example.com")
    receiver.answers.extend([500])
    deliver_due()
    first = admin_api.get(f"/v4/webhooks/{webhook}/messages", {"limit": 2}).json()
    assert len(first["data"]) == 2 and first["nextCursor"]
    second = admin_api.get(f"/v4/webhooks/{webhook}/messages", {"limit": 2, "cursor": first["nextCursor"]}).json()
    assert len(second["data"]) == 1 and second["nextCursor"] is None
    messages = first["data"] + second["data"]
    assert [m["id"] for m in messages] == sorted((m["id"] for m in messages), reverse=True)  # newest first
    attempts = [a for m in messages for a in m["attempts"]]
    assert sorted(a["statusCode"] for a in attempts) == [200, 200, 500]
    assert {"time", "statusCode", "durationMs", "responseExcerpt", "error"} == set(attempts[0])
    assert messages[0]["payload"]["type"] == "profile.created"
    bad = admin_api.get(f"/v4/webhooks/{webhook}/messages", {"cursor": "nonsense"})
    assert bad.status_code == 400 and bad.json()["field"] == "cursor"


def test_resend_by_api(admin_api, receiver, make_profile):
    webhook = admin_api.post("/v4/webhooks", {"url": receiver.url, "events": ["profile.created"]}, format="json")
    webhook = webhook.json()["id"]
    make_profile(email="ada@example.com")
    deliver_due()
    message = Message.objects.get()
    response = admin_api.post(f"/v4/webhooks/{webhook}/messages/{message.pk}/resend")
    assert response.status_code == 202, response.content
    assert response.json()["state"] == "pending" and response.json()["webhookId"] == message.webhook_id
    deliver_due()
    assert [r.headers["webhook-id"] for r in receiver.requests] == [message.webhook_id] * 2
    missing = admin_api.post(f"/v4/webhooks/{webhook}/messages/{message.pk + 1000}/resend")
    assert missing.status_code == 404
