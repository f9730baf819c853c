"""System events written by the receivers of the services' signals: exactly the expected ones, in bulk."""

from datetime import UTC, datetime

import pytest
from django.test import override_settings

from consents.signals import ConsentChange, consent_changed
from privacy.services import profile_erase
from profiles import signals
from profiles.models import Event, Profile
from profiles.services import ProfileInput, profile_update, profile_upsert

pytestmark = pytest.mark.django_db


def system_events(profile=None, **filters):
    qs = Event.objects.filter(is_system=True, **filters)
    if profile is not None:
        qs = qs.filter(profile=profile)
    return list(qs.order_by("id"))


def test_creating_a_profile_writes_one_created_event(make_profile):
    profile = make_profile(email="ann@example.com")
    events = system_events(profile)
    assert [e.action for e in events] == ["profile.created"]
    assert events[0].source == "tests" and events[0].actor == "tests"


def test_a_change_records_old_and_new_value_per_attribute(make_profile):
    profile = make_profile(email="ann@example.com", city="Warsaw", attributes={"points": 1})
    data = ProfileInput(fields={"city": "Paris", "first_name": "Ann"}, attributes={"points": 2})
    profile_update(profile=profile, data=data, source="api", actor="key:shop")
    [event] = system_events(profile, action="profile.updated")
    assert event.params["changes"] == {
        "city": {"old": "Warsaw", "new": "Paris"},
        "attributes.points": {"old": 1, "new": 2},
    }
    assert "firstName" not in event.params["changes"]  # the placeholder first name was already "Ann"
    assert (event.source, event.actor, event.is_system) == ("api", "key:shop", True)


def test_unchanged_values_emit_nothing(make_profile):
    profile = make_profile(email="ann@example.com", city="Warsaw", attributes={"points": 1})
    before = Event.objects.count()
    profile_update(
        profile=profile,
        data=ProfileInput(
            identifiers={"email": "ANN@example.com"}, fields={"city": "Warsaw"}, attributes={"points": 1}
        ),
        source="api",
    )
    profile_upsert(data=ProfileInput(identifiers={"email": "ann@example.com"}, fields={"city": "Warsaw"}), source="api")
    assert Event.objects.count() == before


def test_identification_writes_identified_and_the_email_change():
    uuid = "24f539a0-d257-11ea-92f0-23c0f0aec77f"
    anon = profile_upsert(data=ProfileInput(identifiers={"uuid": uuid}), source="web").profile
    profile_upsert(data=ProfileInput(identifiers={"uuid": uuid, "email": "ann@example.com"}), source="web")
    actions = [e.action for e in system_events(anon)]
    assert actions == ["profile.created", "profile.updated", "profile.identified"]
    identified = system_events(anon, action="profile.identified")[0]
    assert identified.params == {"email": "ann@example.com"}
    assert system_events(anon, action="profile.updated")[0].params["changes"]["email"] == {
        "old": None,
        "new": "ann@example.com",
    }


def test_deleting_leaves_a_tombstone_without_personal_data(make_profile):
    profile = make_profile(email="ann@example.com")
    client_id = profile.pk
    profile_erase(profile=profile, source="api", actor="key:shop")
    assert not Event.objects.filter(profile_id=client_id).exists()  # the timeline went with the profile
    [tomb] = Event.objects.filter(action="profile.deleted")
    assert tomb.profile_id is None
    assert tomb.params == {"clientId": client_id, "mergedClientIds": [], "erasureId": tomb.params["erasureId"]}
    assert (tomb.source, tomb.actor) == ("api", "key:shop")  # who asked, and (tomb.time) when
    assert "ann" not in tomb.label and "ann" not in str(tomb.params)


def test_consent_changes_become_events(make_profile):
    profile = make_profile(email="ann@example.com")
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    changes = [
        ConsentChange(profile.pk, 1, "email", "", "granted", 10, when),
        ConsentChange(profile.pk, 2, "sms", "granted", "denied", 11, when),
        ConsentChange(profile.pk, 3, "push", "granted", "", 12, when),  # removed by a merge: nothing
    ]
    consent_changed.send(sender=None, changes=changes, source="api", actor="tests")
    events = system_events(profile, action="consent.changed")
    assert [(e.params["agreement"], e.params["old"], e.params["new"]) for e in events] == [
        ("email", None, "granted"),
        ("sms", "granted", "denied"),
    ]
    assert events[0].time == when and events[0].params["recordId"] == 10


def test_merge_and_unmerge_signals_write_events(make_profile):
    survivor = make_profile(email="ann@example.com")
    restored = make_profile(email="bob@example.com")
    snapshot = {"clientId": restored.pk, "profile": {"email": "bob@example.com"}, "steps": {"events": {"ids": [1]}}}
    signals.profiles_merged.send(sender=Profile, survivor=survivor, merged=[snapshot], source="api", actor="t")
    [merged] = system_events(survivor, action="profile.merged")
    assert merged.params == {
        "mergedClientId": restored.pk,
        "reason": None,
        "snapshot": {"clientId": restored.pk, "profile": {"email": "bob@example.com"}},
    }
    signals.profile_unmerged.send(
        sender=Profile, survivor=survivor, restored=restored, notes=["x"], source="api", actor="t"
    )
    assert len(system_events(survivor, action="profile.unmerged")) == 1
    assert system_events(restored, action="profile.unmerged")[0].params["notes"] == ["x"]


@pytest.mark.parametrize("size", [10, 1000])
def test_a_change_set_of_any_size_is_one_insert(make_profile, django_assert_num_queries, size):
    profiles = [make_profile(email=f"p{i}@example.com") for i in range(3)]
    changes = [(profiles[i % 3].pk, {"city": (None, f"City {i}"), "same": (1, 1)}) for i in range(size)]
    before = Event.objects.count()
    # The events INSERT, and the webhook receivers' one read of the subscriptions (none here).
    with django_assert_num_queries(2):
        signals.profile_changed.send(sender=Profile, changes=changes, source="batch", actor="job")
    assert Event.objects.count() - before == size
    assert not Event.objects.filter(action="profile.updated", params__changes__has_key="same").exists()


def test_a_batch_of_created_profiles_is_one_insert(make_profile, django_assert_num_queries):
    profiles = [make_profile(email=f"p{i}@example.com") for i in range(5)] * 200  # 1,000 entries
    # Each: the events INSERT, and the webhook receivers' one read of the subscriptions (none here).
    with django_assert_num_queries(2):
        signals.profile_created.send(sender=Profile, profiles=profiles, source="batch", actor="job")
    with django_assert_num_queries(2):
        signals.profile_identified.send(sender=Profile, profiles=profiles, source="batch", actor="job")


def test_a_change_set_without_real_changes_writes_nothing(make_profile, django_assert_max_num_queries):
    profile = make_profile(email="ann@example.com")
    before = Event.objects.count()
    with django_assert_max_num_queries(0):
        signals.profile_changed.send(sender=Profile, changes=[(profile.pk, {})], source="api", actor="t")
    signals.profile_changed.send(sender=Profile, changes=[(profile.pk, {"city": ("A", "A")})], source="api", actor="t")
    assert Event.objects.count() == before


@override_settings(SYSTEM_EVENTS_ENABLED=False)
def test_system_events_can_be_switched_off(make_profile):
    profile = make_profile(email="ann@example.com", city="Warsaw")
    profile_update(profile=profile, data=ProfileInput(fields={"city": "Paris"}), source="api")
    assert not Event.objects.exists()
