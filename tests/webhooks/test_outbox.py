"""Outbox rows: written by the receivers in the transaction of the change, one INSERT per change set."""

import json

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from consents.services import consent_set
from privacy.services import profile_erase
from profiles.models import Profile
from profiles.services import ProfileInput, profile_update
from profiles.services.batch import profiles_upsert_many
from profiles.services.tags import tag_create, tags_add
from segments.services import segment_create
from segments.usage import segment_users
from webhooks.models import Event, EventType, Message, Subscription
from webhooks.services import event_body, outbox_fan_out

pytestmark = pytest.mark.django_db


def payloads(subscription=None, type_=None):
    outbox_fan_out()
    queryset = Message.objects.select_related("event").order_by("id")
    if subscription is not None:
        queryset = queryset.filter(subscription=subscription)
    if type_:
        queryset = queryset.filter(event__event_type=type_)
    return [json.loads(event_body(event=m.event)) for m in queryset]


def test_a_created_profile_is_recorded_with_its_document(subscribe, make_profile):
    subscription, _ = subscribe([EventType.PROFILE_CREATED])
    profile = make_profile(email="ada@example.com", first_name="Ada")
    (event,) = Event.objects.all()
    assert (event.event_type, event.profile_id, event.subscription_ids) == (
        "profile.created",
        profile.pk,
        [subscription.pk],
    )
    assert outbox_fan_out() == 1
    (message,) = Message.objects.all()
    assert (message.subscription, message.profile_id, message.state) == (subscription, profile.pk, "pending")
    assert message.webhook_id.startswith("msg_") and len(message.webhook_id) == 36
    body = json.loads(event_body(event=message.event))
    assert set(body) == {"type", "timestamp", "data"}
    assert body["type"] == "profile.created"
    assert body["timestamp"].endswith("Z")
    data = body["data"]
    assert data["clientId"] == profile.pk
    assert data["actor"] == "tests"
    assert data["profile"]["email"] == "ada@example.com"
    assert data["profile"]["firstName"] == "Ada"


def test_an_update_carries_the_changed_fields_old_and_new(subscribe, make_profile):
    profile = make_profile(email="ada@example.com", first_name="Ada")
    subscribe([EventType.PROFILE_UPDATED])
    profile_update(profile=profile, data=ProfileInput(fields={"first_name": "Ida"}), source="api", actor="user:ola")
    (body,) = payloads()
    assert body["type"] == "profile.updated"
    assert body["data"]["changes"]["firstName"] == {"old": "Ada", "new": "Ida"}
    assert body["data"]["profile"]["firstName"] == "Ida"
    assert body["data"]["actor"] == "user:ola"
    assert body["data"]["source"] == "api"


def test_only_subscribed_types_and_enabled_subscriptions_get_messages(subscribe, make_profile):
    tags_only, _ = subscribe([EventType.TAG_ADDED])
    everything, _ = subscribe()
    off, _ = subscribe(enabled=False)
    profile = make_profile(email="ada@example.com")
    tags_add(profiles=[profile], tags=[tag_create(name="vip")], source="tests", actor="tests")
    assert [b["type"] for b in payloads(tags_only)] == ["tag.added"]
    assert [b["data"]["tag"]["name"] for b in payloads(tags_only)] == ["vip"]
    assert {b["type"] for b in payloads(everything)} >= {"profile.created", "tag.added"}
    assert payloads(off) == []


def test_rolled_back_changes_leave_no_outbox_rows(subscribe, make_profile):
    subscribe()
    with pytest.raises(RuntimeError), transaction.atomic():
        make_profile(email="gone@example.com")
        assert Event.objects.count() >= 1  # written inside the change's transaction...
        raise RuntimeError("the change fails after the outbox row was written")
    assert Event.objects.count() == 0  # ...and gone with it
    assert outbox_fan_out() == 0 and Message.objects.count() == 0
    assert not Profile.objects.filter(email="gone@example.com").exists()


def test_a_batch_of_1000_changes_is_one_insert(subscribe):
    subscribe([EventType.PROFILE_CREATED])
    subscribe([EventType.PROFILE_CREATED, EventType.PROFILE_UPDATED])
    items = [ProfileInput(identifiers={"email": f"p{i}@example.com"}) for i in range(1000)]
    with CaptureQueriesContext(connection) as queries:
        results = profiles_upsert_many(items=items, source="tests", actor="tests")
    assert all(r.status == "created" for r in results)
    inserts = [q["sql"] for q in queries.captured_queries if "INSERT INTO webhooks" in q["sql"]]
    assert len(inserts) == 1
    assert Event.objects.count() == 1000
    assert outbox_fan_out() == 2000
    # Messages keep the change order: ids follow the items.
    first = Message.objects.filter(subscription=Subscription.objects.first()).order_by("id")
    emails = [json.loads(event_body(event=m.event))["data"]["profile"]["email"] for m in first[:3]]
    assert emails == ["p0@example.com", "p1@example.com", "p2@example.com"]


def test_changes_made_with_an_ignored_key_are_not_sent_back(subscribe, api, write_key):
    key, _ = write_key
    looped, _ = subscribe([EventType.PROFILE_CREATED], ignore_keys=[key.prefix])
    other, _ = subscribe([EventType.PROFILE_CREATED], ignore_keys=["abcdef12"])
    response = api.post("/v4/clients", {"email": "loop@example.com"}, format="json")
    assert response.status_code in (200, 201, 202), response.content
    assert payloads(looped) == []
    (body,) = payloads(other)
    assert body["data"]["actor"] == f"api-key:{key.prefix}"  # lets receivers filter further


def test_a_consent_change_names_the_agreement_states_and_ledger_record(subscribe, make_profile, email_agreement):
    profile = make_profile(email="ada@example.com")
    subscribe([EventType.CONSENT_CHANGED])
    consent_set(profile=profile, agreement=email_agreement, state="granted", source="tests", actor="tests")
    (body,) = payloads()
    data = body["data"]
    assert (data["clientId"], data["agreement"], data["new"]) == (profile.pk, "email", "granted")
    assert data["old"] in (None, "denied", "withdrawn")
    assert isinstance(data["recordId"], int)


def test_an_erasure_message_carries_no_personal_data(subscribe, make_profile):
    profile = make_profile(email="secret@example.com", first_name="Hidden")
    subscribe([EventType.PROFILE_DELETED])
    profile_erase(profile=profile, source="tests", actor="user:dpo")
    outbox_fan_out()
    (message,) = Message.objects.all()
    assert "secret@example.com" not in event_body(event=message.event) and "Hidden" not in event_body(
        event=message.event
    )
    body = json.loads(event_body(event=message.event))
    assert body["type"] == "profile.deleted"
    assert body["data"] == {"clientId": profile.pk, "actor": "user:dpo", "source": "tests", "requestId": ""}


def test_a_segment_limited_subscription_gets_only_its_members(subscribe, make_profile):
    inside = make_profile(email="in@example.com", city="Gdańsk")
    outside = make_profile(email="out@example.com", city="Warsaw")
    segment = segment_create(name="Gdańsk", tree={"field": "city", "op": "eq", "value": "gdańsk"})
    subscription, _ = subscribe([EventType.PROFILE_UPDATED], segment=segment.pk)
    for profile in (inside, outside):
        profile_update(profile=profile, data=ProfileInput(fields={"last_name": "Nowak"}), source="tests", actor="t")
    assert [b["data"]["clientId"] for b in payloads(subscription)] == [inside.pk]
    # The segment is decided when the change is written: leaving it by this very change still tells the receiver.
    profile_update(profile=inside, data=ProfileInput(fields={"city": "Sopot"}), source="tests", actor="t")
    assert len(payloads(subscription)) == 1


def test_one_change_set_reaches_each_subscription_with_its_own_profiles_in_order(subscribe):
    """One batch is one run of events: a segment-limited subscription gets its members' events, an unlimited one
    gets them all, each in the batch's order, with each profile's own changes."""
    segment = segment_create(name="Gdańsk", tree={"field": "city", "op": "eq", "value": "gdańsk"})
    limited, _ = subscribe([EventType.PROFILE_CREATED], segment=segment.pk)
    everyone, _ = subscribe([EventType.PROFILE_CREATED])
    cities = ["Warsaw", "Gdańsk", "Gdańsk", "Kraków", "Gdańsk"]
    items = [ProfileInput(identifiers={"email": f"p{i}@example.com"}, fields={"city": c}) for i, c in enumerate(cities)]
    with CaptureQueriesContext(connection) as queries:
        profiles_upsert_many(items=items, source="tests", actor="api-key:abc")
    assert sum("INSERT INTO webhooks_event" in q["sql"] for q in queries.captured_queries) == 1
    ids = [Profile.objects.get(email=f"p{i}@example.com").pk for i in range(len(cities))]
    expected = [(ids[i], c) for i, c in enumerate(cities)]
    got = {
        s.pk: [(b["data"]["clientId"], b["data"]["profile"]["city"]) for b in payloads(s)] for s in (limited, everyone)
    }
    assert got[everyone.pk] == expected
    assert got[limited.pk] == [pair for pair in expected if pair[1] == "Gdańsk"]
    body = payloads(everyone)[0]["data"]
    assert (body["actor"], body["source"], body["changes"]) == ("api-key:abc", "tests", {})


def test_a_segment_a_subscription_uses_cannot_be_deleted(subscribe):
    segment = segment_create(name="Warsaw", tree={"field": "city", "op": "eq", "value": "Warsaw"})
    subscription, _ = subscribe([EventType.PROFILE_UPDATED], segment=segment.pk)
    assert segment_users(segment.pk) == [f"webhook {subscription.pk} {subscription.url}"]


def test_a_subscription_whose_segment_is_gone_gets_nothing(subscribe, make_profile):
    profile = make_profile(email="ada@example.com")
    subscription, _ = subscribe([EventType.PROFILE_UPDATED])
    Subscription.objects.filter(pk=subscription.pk).update(segment_id=987654)
    profile_update(profile=profile, data=ProfileInput(fields={"city": "Kraków"}), source="tests", actor="tests")
    assert payloads() == []


def test_the_body_is_rendered_once_and_every_attempt_sends_it(subscribe, make_profile):
    subscribe([EventType.PROFILE_CREATED])
    profile = make_profile(email="ada@example.com", first_name="Ada")
    (first,) = payloads()  # the first render (what the first attempt sends) is stored
    assert first["data"]["profile"]["firstName"] == "Ada"
    profile_update(profile=profile, data=ProfileInput(fields={"first_name": "Ida"}), source="tests", actor="tests")
    profile.delete()
    assert payloads() == [first]  # later attempts and resends send the same bytes


def test_segment_and_import_signals_are_recorded(subscribe, make_profile):
    from webhooks.receivers import on_import_finished, on_segment_entered, on_segment_left

    profile = make_profile(email="ada@example.com")
    subscribe([EventType.SEGMENT_ENTERED, EventType.SEGMENT_LEFT, EventType.IMPORT_FINISHED])
    on_segment_entered(None, pairs=[(profile.pk, 4)], segments={4: "VIP"}, cause="write")
    on_segment_left(None, pairs=[(profile.pk, 5)], segments={5: "New"}, cause="time")
    on_import_finished(None, import_job=12, status="done", counts={"created": 3}, source="import", actor="import:12")
    on_import_finished(None, import_job=13, status="done", counts={}, dry_run=True, source="import", actor="x")
    bodies = payloads()
    assert [(b["type"], b["data"].get("segment")) for b in bodies[:2]] == [
        ("segment.entered", {"id": 4, "name": "VIP"}),
        ("segment.left", {"id": 5, "name": "New"}),
    ]
    assert bodies[2]["type"] == "import.finished"
    assert (bodies[2]["data"]["importId"], bodies[2]["data"]["counts"]) == ("12", {"created": 3})
    assert len(bodies) == 3  # a dry run sends nothing


def test_erasure_removes_the_persons_outbox_rows_and_tells_receivers_by_id_only(subscribe, make_profile):
    subscription, _ = subscribe([EventType.PROFILE_CREATED, EventType.PROFILE_UPDATED, EventType.PROFILE_DELETED])
    other = make_profile(email="other@example.com")
    profile = make_profile(email="ada@example.com", first_name="Ada")
    profile_update(profile=profile, data=ProfileInput(fields={"first_name": "Ida"}), source="api", actor="tests")
    outbox_fan_out()  # bodies rendered: the documents with the e-mail are stored
    client_id = profile.pk
    profile_erase(profile=profile, source="api", actor="tests")
    left = list(Event.objects.order_by("id").values_list("profile_id", "event_type"))
    assert left == [(other.pk, "profile.created"), (client_id, "profile.deleted")]
    assert not Message.objects.filter(profile_id=client_id).exclude(event__event_type="profile.deleted").exists()
    (deleted,) = payloads(subscription, "profile.deleted")
    assert deleted["data"]["clientId"] == client_id
    assert "ada@example.com" not in json.dumps(deleted) and "Ida" not in json.dumps(deleted)
