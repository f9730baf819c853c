"""POST /v4/events/custom, a profile's timeline, notes and aggregates over the Synerise surface."""

from datetime import timedelta

import pytest
from django.utils import timezone

from profiles.models import Event, Profile

pytestmark = pytest.mark.django_db

UUID = "24f539a0-d257-11ea-92f0-23c0f0aec77f"


def send(api, **body):
    body.setdefault("action", "page.visit")
    body.setdefault("label", "Home")
    body.setdefault("client", {"uuid": UUID})
    return api.post("/v4/events/custom", body, format="json")


def assert_error(response, status, field):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["status"] == status and body.get("field") == field, body
    return body


def test_custom_event_creates_an_anonymous_profile(api):
    response = send(api, time="2026-01-02T03:04:05Z", params={"url": "https://shop.example/"}, eventSalt="s-1")
    assert response.status_code == 202
    profile = Profile.objects.get()
    assert profile.anonymous
    event = Event.objects.get(is_system=False)
    assert (event.action, event.label, event.params, event.salt, event.time.isoformat()) == (
        "page.visit",
        "Home",
        {"url": "https://shop.example/"},
        "s-1",
        "2026-01-02T03:04:05+00:00",
    )


def test_a_retried_event_counts_once(api):
    assert send(api, eventSalt="retry-me").status_code == 202
    assert send(api, eventSalt="retry-me").status_code == 202
    assert Event.objects.filter(is_system=False).count() == 1


def test_form_submit_identifies(api):
    send(api)
    assert send(api, action="form.submit", params={"email": "ann@example.com"}).status_code == 202
    profile = Profile.objects.get()
    assert profile.email == "ann@example.com"
    assert api.get("/v4/clients/by-email/ann@example.com").json()["anonymous"] is False


def test_form_submit_collision_is_409_and_writes_nothing(api, make_profile):
    make_profile(email="ann@example.com")
    make_profile(customId="C-BOB", email="bob@example.com")
    before = Event.objects.count()
    response = send(api, action="form.submit", client={"customId": "C-BOB"}, params={"email": "ann@example.com"})
    assert response.status_code == 409, response.content
    assert Event.objects.count() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "nodot"}, "action"),
        ({"action": 5}, "action"),
        ({"time": "yesterday"}, "time"),
        ({"time": (timezone.now() + timedelta(days=2)).isoformat()}, "time"),
        ({"time": 1700000000}, "time"),
        ({"params": "a=b"}, "params"),
        ({"client": "abc"}, "client"),
        ({"client": {}}, "client"),
        ({"client": {"email": "null"}}, "client.email"),
        ({"client": {"token": "x"}}, "client.token"),
        ({"eventSalt": 12}, "eventSalt"),
        ({"extra": 1}, "extra"),
    ],
)
def test_bad_events_are_400_naming_the_field(api, body, field):
    assert_error(send(api, **body), 400, field)
    assert not Profile.objects.exists() and not Event.objects.exists()


def test_unknown_client_id_is_404(api):
    assert_error(send(api, client={"id": 424242}), 404, "client.id")


def test_timeline_endpoint_pages_and_filters(api, make_profile):
    ann = make_profile(email="ann@example.com", uuid=UUID)
    for i in range(3):
        send(api, label=f"visit {i}", time=(timezone.now() - timedelta(minutes=10 - i)).isoformat())
    first = api.get(f"/v4/clients/{ann.pk}/events", {"type": "custom", "limit": 2}).json()
    assert [e["label"] for e in first["data"]] == ["visit 2", "visit 1"]
    assert all(e["system"] is False and e["clientId"] == ann.pk for e in first["data"])
    second = api.get(f"/v4/clients/{ann.pk}/events", {"type": "custom", "limit": 2, "cursor": first["nextCursor"]})
    assert [e["label"] for e in second.json()["data"]] == ["visit 0"]
    assert second.json()["nextCursor"] is None
    system = api.get(f"/v4/clients/{ann.pk}/events", {"type": "system"}).json()["data"]
    assert [e["action"] for e in system] == ["profile.created"]
    only = api.get(f"/v4/clients/{ann.pk}/events", {"action": "profile.created,page.visit"}).json()["data"]
    assert len(only) == 4
    assert_error(api.get(f"/v4/clients/{ann.pk}/events", {"type": "both"}), 400, "type")
    assert_error(api.get(f"/v4/clients/{ann.pk}/events", {"limit": 1000}), 400, "limit")
    assert_error(api.get(f"/v4/clients/{ann.pk}/events", {"cursor": "%%%"}), 400, "cursor")
    assert_error(api.get(f"/v4/clients/{ann.pk + 99}/events"), 404, "clientId")


def test_notes_and_aggregates(api, make_profile):
    ann = make_profile(email="ann@example.com", uuid=UUID)
    response = api.post(f"/v4/clients/{ann.pk}/notes", {"text": "VIP caller"}, format="json")
    assert response.status_code == 201
    assert (response.json()["action"], response.json()["system"]) == ("note.added", True)
    assert_error(api.post(f"/v4/clients/{ann.pk}/notes", {"text": ""}, format="json"), 400, "text")
    send(api)
    send(api, action="form.submit", params={"form": "nl"})
    body = api.get(f"/v4/clients/{ann.pk}/aggregates").json()
    assert body["events"] == {
        "form.submit": {"7d": 1, "30d": 1, "90d": 1},
        "page.visit": {"7d": 1, "30d": 1, "90d": 1},
    }
    assert body["lastEventTime"] is not None
    assert (body["totalOrders"], body["totalSpent"], body["rfmSegment"]) == (0, 0.0, None)
