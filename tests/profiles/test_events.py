"""Custom events, eventSalt, form.submit identification, notes, the timeline and aggregates."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from crm.errors import Conflict, NotFound, ValidationFailed
from profiles.merge_registry import MergeContext, UnmergeContext
from profiles.models import Event, EventSalt, Profile
from profiles.selectors import profile_event_aggregates, profile_timeline
from profiles.services.events import (
    EventInput,
    NewEvent,
    event_record,
    events_insert,
    events_merge_step,
    events_unmerge_step,
    note_add,
)

pytestmark = pytest.mark.django_db

UUID = "24f539a0-d257-11ea-92f0-23c0f0aec77f"


def record(action="page.visit", client=None, **kwargs):
    return event_record(data=EventInput(action=action, client=client or {"uuid": UUID}, **kwargs), source="api")


def test_an_unknown_uuid_creates_an_anonymous_profile_and_moves_last_activity():
    when = timezone.now() + timedelta(seconds=60)  # later than the profile's creation, within the clock-skew tolerance
    result = record(client={"uuid": UUID.upper()}, label="Home", time=when, params={"url": "/"})
    profile = Profile.objects.get()
    assert profile.anonymous and profile.uuid == UUID
    event = Event.objects.get(is_system=False)
    assert (event.profile_id, event.action, event.label, event.params, event.time) == (
        profile.pk,
        "page.visit",
        "Home",
        {"url": "/"},
        when,
    )
    assert result.event == event
    record(time=when - timedelta(days=1))  # an older event does not move it back
    profile.refresh_from_db()
    assert profile.last_activity_date == when
    assert Profile.objects.count() == 1


def test_known_identifiers_reuse_the_profile(make_profile):
    ann = make_profile(email="ann@example.com", customId="C-1")
    assert record(client={"email": "ANN@example.com"}).profile.pk == ann.pk
    assert record(client={"customId": "C-1"}).profile.pk == ann.pk
    assert record(client={"clientId": ann.pk}).profile.pk == ann.pk
    with pytest.raises(NotFound) as error:
        record(client={"clientId": ann.pk + 1000})
    assert error.value.field == "client.id"
    assert Event.objects.filter(is_system=False).count() == 3


def test_event_salt_counts_a_retried_event_once():
    first = record(salt="order-1-view")
    second = record(salt="order-1-view")
    assert not first.duplicate and second.duplicate
    assert Event.objects.filter(salt="order-1-view").count() == 1


def test_event_salt_is_enforced_by_the_database(make_profile):
    ann = make_profile(email="ann@example.com")
    Event.objects.create(profile=ann, action="a.b", time=timezone.now(), salt="s1")
    with pytest.raises(IntegrityError), transaction.atomic():
        Event.objects.create(profile=ann, action="a.b", time=timezone.now(), salt="s1")


def test_a_salt_race_leaves_no_trace(monkeypatch):
    """The dedup table, not the pre-check, decides: a duplicate found at INSERT rolls back the new profile too."""
    other = Profile.objects.create(uuid="u-other", correlation_id="c")
    Event.objects.create(profile=other, action="a.b", time=timezone.now(), salt="race")
    monkeypatch.setattr("profiles.services.events.EventSalt.objects.filter", lambda **kw: EventSalt.objects.none())
    result = record(salt="race")
    assert result.duplicate
    assert Profile.objects.count() == 1  # the anonymous profile for UUID was rolled back


def test_form_submit_with_an_email_identifies_the_profile():
    record(client={"uuid": UUID})
    result = record(action="form.submit", client={"uuid": UUID}, params={"email": "Ann@Example.com", "form": "nl"})
    profile = Profile.objects.get()
    assert result.profile.pk == profile.pk
    assert (profile.email, profile.anonymous) == ("ann@example.com", False)
    assert Event.objects.filter(profile=profile, action="profile.identified").count() == 1


def test_form_submit_colliding_with_another_recognized_profile_writes_nothing(make_profile):
    make_profile(email="ann@example.com")
    make_profile(customId="C-BOB", email="bob@example.com")  # another person
    before = (Profile.objects.count(), Event.objects.count())
    with pytest.raises(Conflict):
        record(action="form.submit", client={"customId": "C-BOB"}, params={"email": "ann@example.com"})
    assert (Profile.objects.count(), Event.objects.count()) == before


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"action": "no-dot"}, "action"),
        ({"action": "bad action.x"}, "action"),
        ({"action": "profile.updated"}, "action"),
        ({"action": ""}, "action"),
        ({"params": ["not", "an", "object"]}, "params"),
        ({"time": datetime(2100, 1, 1, tzinfo=UTC)}, "time"),
        ({"label": "x" * 257}, "label"),
        ({"salt": ""}, "eventSalt"),
        ({"action": "form.submit", "params": {"email": "null"}}, "params.email"),
        ({"client": {"email": "not-an-email"}}, "client.email"),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(kwargs, field):
    with pytest.raises(ValidationFailed) as error:
        record(**kwargs)
    assert error.value.field == field
    assert not Profile.objects.exists() and not Event.objects.exists()


def test_notes_are_system_events(make_profile):
    ann = make_profile(email="ann@example.com")
    note = note_add(profile=ann, text="Called her.\nShe wants a catalogue.", author="marketer", source="admin")
    assert (note.action, note.is_system, note.label, note.actor) == ("note.added", True, "Called her.", "marketer")
    assert note.params == {"text": "Called her.\nShe wants a catalogue.", "author": "marketer"}
    with pytest.raises(ValidationFailed):
        note_add(profile=ann, text="  ", author="m", source="admin")


def make_events(profile, spec, *, now):
    """spec: [(action, days ago, system?)] → inserted events."""
    events_insert(
        rows=[
            NewEvent(profile_id=profile.pk, action=a, time=now - timedelta(days=d), is_system=s, source="t")
            for a, d, s in spec
        ]
    )


def test_timeline_is_newest_first_cursor_paged_and_filterable(make_profile, django_assert_num_queries):
    ann = make_profile(email="ann@example.com")
    Event.objects.all().delete()
    now = timezone.now()
    same = now - timedelta(days=1)
    events_insert(
        rows=[
            NewEvent(profile_id=ann.pk, action="page.visit", time=same, is_system=False, label=str(i)) for i in range(3)
        ]
        + [NewEvent(profile_id=ann.pk, action="tag.added", time=now, label="t")]
        + [NewEvent(profile_id=ann.pk, action="form.submit", time=now - timedelta(days=2), is_system=False)]
    )
    seen = []
    cursor = None
    while True:
        with django_assert_num_queries(1):
            page = profile_timeline(profile_id=ann.pk, limit=2, cursor=cursor)
        seen += page.events
        cursor = page.next_cursor
        if cursor is None:
            break
    assert [e.label or e.action for e in seen] == ["t", "2", "1", "0", "form.submit"]
    assert len({e.pk for e in seen}) == 5
    custom = profile_timeline(profile_id=ann.pk, system=False).events
    assert [e.action for e in custom] == ["page.visit"] * 3 + ["form.submit"]
    assert [e.action for e in profile_timeline(profile_id=ann.pk, system=True).events] == ["tag.added"]
    assert [e.action for e in profile_timeline(profile_id=ann.pk, actions=["form.submit"]).events] == ["form.submit"]
    with pytest.raises(ValidationFailed) as error:
        profile_timeline(profile_id=ann.pk, cursor="garbage!")
    assert error.value.field == "cursor"


def test_aggregates_count_custom_events_by_action_per_window_in_two_queries(make_profile, django_assert_num_queries):
    ann, bob = make_profile(email="ann@example.com"), make_profile(email="bob@example.com")
    now = timezone.now()
    make_events(
        ann,
        [
            *[("page.visit", days, False) for days in (1, 10, 40, 100)],
            ("form.submit", 3, False),
            ("tag.added", 1, True),
        ],
        now=now,
    )
    make_events(bob, [("page.visit", 1, False)], now=now)
    with django_assert_num_queries(2):
        data = profile_event_aggregates(profile_id=ann.pk, now=now)
    assert data["counts"] == {
        "form.submit": {"7d": 1, "30d": 1, "90d": 1},
        "page.visit": {"7d": 1, "30d": 2, "90d": 3},
    }
    assert data["lastEventTime"] == now - timedelta(days=1)


def test_merge_step_moves_the_timeline_and_unmerge_moves_it_back(make_profile):
    survivor, merged = make_profile(email="ann@example.com"), make_profile(email="bob@example.com")
    now = timezone.now()
    make_events(merged, [("page.visit", 1, False), ("page.visit", 2, False)], now=now)
    merged.last_activity_date = now + timedelta(minutes=1)
    theirs = set(Event.objects.filter(profile=merged).values_list("pk", flat=True))
    data = events_merge_step(ctx=MergeContext(survivor=survivor, merged=merged, source="t", actor="t"))
    assert set(data["ids"]) == theirs
    assert not Event.objects.filter(profile=merged).exists()
    notes = events_unmerge_step(
        ctx=UnmergeContext(survivor=survivor, restored=merged, data=data, source="t", actor="t")
    )
    assert notes == []
    assert set(Event.objects.filter(profile=merged).values_list("pk", flat=True)) == theirs
