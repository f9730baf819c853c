"""The payload's profile document is the profile as its change left it: captured by the outbox INSERT, in the
change's transaction, from the same row and extras every read of a document uses."""

import json
from datetime import UTC, date, datetime

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction

from consents.models import Agreement
from consents.services import consent_set
from profiles.documents import profile_document_from_snapshot, profile_documents_by_ids
from profiles.models import Profile
from profiles.selectors import profile_snapshots_sql
from profiles.services import ProfileInput, profile_update, profile_upsert
from profiles.services.batch import profiles_upsert_many
from profiles.services.merge import profile_merge
from profiles.services.tags import tag_create, tags_add
from webhooks.delivery import deliver_due
from webhooks.models import Event, EventType, Message
from webhooks.services import event_body, outbox_fan_out

pytestmark = pytest.mark.django_db


def _bytes(document) -> str:
    return json.dumps(document, cls=DjangoJSONEncoder, separators=(",", ":"), ensure_ascii=False)


def test_two_quick_changes_each_carry_the_document_after_their_own_change(subscribe, receiver, make_profile):
    subscribe([EventType.PROFILE_CREATED, EventType.PROFILE_UPDATED])
    with transaction.atomic():
        profile = make_profile(email="ada@example.com", first_name="Ada", city="Gdańsk")
    with transaction.atomic():  # committed before any fan-out runs (no worker between the two)
        profile_update(profile=profile, data=ProfileInput(fields={"first_name": "Ida"}), source="api", actor="t")
    assert not Message.objects.exists()
    assert deliver_due() == 1  # the fan-out runs now; one message of the profile at a time
    assert deliver_due() == 1
    created, updated = (r.json for r in receiver.requests)
    assert (created["type"], updated["type"]) == ("profile.created", "profile.updated")
    assert created["data"]["profile"]["firstName"] == "Ada"
    assert updated["data"]["profile"]["firstName"] == "Ida"
    assert created["data"]["profile"]["city"] == updated["data"]["profile"]["city"] == "Gdańsk"


def test_the_captured_document_is_sent_even_if_the_profile_changes_or_goes_before_the_fan_out(subscribe, make_profile):
    subscribe([EventType.PROFILE_CREATED])
    profile = make_profile(email="ada@example.com", first_name="Ada")
    Profile.objects.filter(pk=profile.pk).update(first_name="Later")
    (event,) = Event.objects.all()
    assert event.snapshot is not None
    outbox_fan_out()
    event.refresh_from_db()
    assert event.snapshot is None  # the body holds it now
    assert json.loads(event.body)["data"]["profile"]["firstName"] == "Ada"
    assert json.loads(event_body(event=event))["data"]["profile"]["firstName"] == "Ada"


def test_a_created_profile_s_document_holds_the_write_s_agreements_and_tags(subscribe, email_agreement):
    subscribe([EventType.PROFILE_CREATED, EventType.CONSENT_CHANGED, EventType.TAG_ADDED])
    profile_upsert(
        data=ProfileInput(identifiers={"email": "one@example.com"}, agreements={"email": True}, tags=["vip"]),
        source="tests",
        actor="tests",
    )
    profiles_upsert_many(
        items=[ProfileInput(identifiers={"email": "two@example.com"}, agreements={"email": True}, tags=["vip"])],
        source="tests",
        actor="tests",
    )
    outbox_fan_out()
    for email in ("one@example.com", "two@example.com"):
        pid = Profile.objects.get(email=email).pk
        events = list(Event.objects.filter(profile_id=pid).order_by("id"))
        # The profile's own event first, then its consents and tags, each in the write's transaction.
        assert [e.event_type for e in events] == ["profile.created", "consent.changed", "tag.added"]
        document = json.loads(events[0].body)["data"]["profile"]
        assert (document["agreements"]["email"], document["tags"]) == (True, ["vip"]), email


def test_the_document_from_the_snapshot_is_the_document_a_read_answers(subscribe, make_profile, email_agreement):
    """The SQL capture and the API's read give the same bytes, over profiles with attributes, tags, consents
    (channel and custom, granted and not), identifiers of every kind and previous clientIds."""
    custom = Agreement.objects.create(key="alcohol", title="Offers featuring alcohol", channel="other")
    retired = Agreement.objects.create(key="retired", title="Old", channel="other")
    plain = make_profile(email="plain@example.com")
    full = make_profile(
        email="Full@Example.com",
        phone="+48 600 100 200",
        customId="C-1",
        first_name="Zoë",
        last_name='O\'Brien "Q"',
        city="Łódź",
        birth_date=date(1990, 2, 28),
        sex="FEMALE",
        attributes={
            "points": 12.5,
            "count": 3,
            "member": True,
            "since": "2024-02-29",
            "seen": "2024-02-29T10:15:00+02:00",
            "interests": ["a", "b"],
            "note": "line\nbreak ☃",
        },
    )
    Profile.objects.filter(pk=full.pk).update(last_activity_date=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC))
    anonymous = profile_upsert(
        data=ProfileInput(identifiers={"uuid": "5b5f8a3e-5c59-4a6b-9b0e-1a2b3c4d5e6f"}), source="tests"
    )
    tags_add(profiles=[full], tags=[tag_create(name="vip"), tag_create(name="Beta")], source="tests", actor="tests")
    consent_set(profile=full, agreement=email_agreement, state="granted", source="tests", actor="tests")
    consent_set(profile=full, agreement=custom, state="denied", source="tests", actor="tests")
    consent_set(profile=full, agreement=retired, state="granted", source="tests", actor="tests")
    retired.is_active = False
    retired.save()
    other = make_profile(email="merged@example.com")
    profile_merge(survivor=full, others=[other], source="tests", actor="tests", forced=True)
    ids = [plain.pk, full.pk, anonymous.profile.pk]

    # Through the outbox, as a change records it...
    subscribe([EventType.PROFILE_UPDATED])
    for pid in ids:
        profile_update(
            profile=Profile.objects.get(pk=pid), data=ProfileInput(fields={"company": "ACME"}), source="t", actor="t"
        )
    events = {e.profile_id: e for e in Event.objects.filter(event_type="profile.updated")}
    reads = {doc["clientId"]: doc for doc in profile_documents_by_ids(ids)}
    assert reads[full.pk]["previousClients"] == [other.pk] and reads[full.pk]["tags"] == ["Beta", "vip"]
    assert reads[full.pk]["agreements"]["email"] is True and reads[full.pk]["attributes"]["alcohol"] is False
    for pid in ids:
        assert _bytes(profile_document_from_snapshot(events[pid].snapshot)) == _bytes(reads[pid])
    # ...and the query on its own, for all of them at once.
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH ids AS (SELECT %s::bigint[] AS v) {profile_snapshots_sql(ids='(SELECT v FROM ids)')}", [ids]
        )
        snapshots = dict(cursor.fetchall())
    assert sorted(snapshots) == sorted(ids)
    for pid in ids:
        assert _bytes(profile_document_from_snapshot(snapshots[pid])) == _bytes(reads[pid])


def test_an_event_recorded_without_a_snapshot_gets_the_document_of_now(subscribe, make_profile):
    """Outbox rows written before snapshots were taken (an upgrade with events not fanned out yet)."""
    subscribe([EventType.PROFILE_CREATED])
    profile = make_profile(email="ada@example.com", first_name="Ada")
    Event.objects.update(snapshot=None)
    outbox_fan_out()
    (event,) = Event.objects.all()
    assert json.loads(event.body)["data"]["profile"]["clientId"] == profile.pk
