"""The events table partitioned by month: where rows land, partitions created ahead (moving rows out of the default
partition), old ones detached, the eventSalt dedup table, and the migration that moves existing events."""

from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from profiles.models import Event, EventSalt, Profile
from profiles.partitions import (
    event_partition_create,
    event_partitions,
    event_partitions_detach,
    event_partitions_ensure,
    month_start,
    partition_name,
)
from profiles.selectors import profile_timeline
from profiles.services.events import EventInput, NewEvent, event_record, events_insert
from profiles.tasks import event_partitions_maintain


def _partition_of(event_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM profiles_event WHERE id = %s", [event_id])
        return cursor.fetchone()[0]


def _tables() -> set[str]:
    return set(connection.introspection.table_names())


@pytest.mark.django_db
def test_the_table_is_partitioned_by_month_with_months_ahead_and_a_default():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_partkeydef('profiles_event'::regclass)")
        assert cursor.fetchone()[0] == 'RANGE ("time")'
    partitions = event_partitions()
    this_month = month_start(timezone.now())
    starts = [p.start for p in partitions if p.start]
    assert this_month in starts
    assert partitions[-1].name == "profiles_event_default"
    # The migration made this month and three more.
    assert len([s for s in starts if s >= this_month]) >= 4


@pytest.mark.django_db
def test_an_event_lands_in_its_months_partition(make_profile):
    ann = make_profile(email="ann@example.com")
    event = Event.objects.create(profile=ann, action="page.visit", time=timezone.now())
    assert _partition_of(event.pk) == partition_name(month_start(timezone.now()))
    assert Event.objects.get(pk=event.pk).action == "page.visit"  # Django's id lookup still finds it


@pytest.mark.django_db
def test_creating_a_month_moves_its_events_out_of_the_default_partition(make_profile):
    ann = make_profile(email="ann@example.com")
    old = datetime(2019, 5, 17, 12, tzinfo=UTC)
    event = Event.objects.create(profile=ann, action="page.visit", time=old)
    assert _partition_of(event.pk) == "profiles_event_default"
    assert event_partition_create(old) is True
    assert _partition_of(event.pk) == "profiles_event_p201905"
    assert event_partition_create(old) is False  # there already
    # The timeline reads across partitions as before.
    recent = Event.objects.create(profile=ann, action="page.visit", time=timezone.now())
    ids = [e.pk for e in profile_timeline(profile_id=ann.pk, system=False).events]
    assert ids == [recent.pk, event.pk]
    # The moved partition carries the salt trigger too (it was attached, not created as a partition).
    Event.objects.create(profile=ann, action="a.b", time=old.replace(day=20), salt="old-salt")
    assert EventSalt.objects.filter(salt="old-salt").exists()


@pytest.mark.django_db
def test_ensure_creates_the_coming_months_once_and_the_recurring_task_runs_it(settings):
    settings.EVENT_PARTITIONS_AHEAD = 5
    later = datetime(2031, 11, 3, tzinfo=UTC)
    created = event_partitions_ensure(now=later)
    assert created == [f"profiles_event_p{m}" for m in ("203111", "203112", "203201", "203202", "203203", "203204")]
    assert event_partitions_ensure(now=later) == []
    before = {p.name for p in event_partitions()}
    today = timezone.now()
    result = event_partitions_maintain.call()
    # This month and EVENT_PARTITIONS_AHEAD (5) more, counted here without the module's month arithmetic.
    wanted = []
    for ahead in range(6):
        years, month = divmod(today.month - 1 + ahead, 12)
        wanted.append(f"profiles_event_p{today.year + years}{month + 1:02d}")
    expected = [name for name in wanted if name not in before]
    assert expected  # the migration made three months ahead: the task has months to add
    assert result["created"] == expected
    assert set(wanted) <= {p.name for p in event_partitions()}


@pytest.mark.django_db
def test_ensure_gives_history_in_the_default_partition_months_of_its_own(make_profile):
    ann = make_profile(email="ann@example.com")
    march = Event.objects.create(profile=ann, action="page.visit", time=datetime(2016, 3, 31, 23, 59, tzinfo=UTC))
    april = Event.objects.create(profile=ann, action="page.visit", time=datetime(2016, 4, 1, tzinfo=UTC))
    created = event_partitions_ensure(months_ahead=0)
    assert created[:2] == ["profiles_event_p201603", "profiles_event_p201604"]
    assert (_partition_of(march.pk), _partition_of(april.pk)) == ("profiles_event_p201603", "profiles_event_p201604")
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM profiles_event_default")
        assert cursor.fetchone()[0] == 0


@pytest.mark.django_db
def test_detaching_old_months_keeps_their_salts(make_profile):
    ann = make_profile(email="ann@example.com")
    old = datetime(2018, 3, 2, tzinfo=UTC)
    event_partition_create(old)
    event_partition_create(datetime(2018, 4, 1, tzinfo=UTC))
    Event.objects.create(profile=ann, action="page.visit", time=old, salt="march-2018")
    kept = Event.objects.create(profile=ann, action="page.visit", time=datetime(2018, 4, 9, tzinfo=UTC))
    assert event_partitions_detach(before=datetime(2018, 4, 1, tzinfo=UTC)) == ["profiles_event_p201803"]
    assert "profiles_event_p201803" in _tables()  # an ordinary table now, to archive
    assert "profiles_event_p201803" not in {p.name for p in event_partitions()}
    assert list(Event.objects.filter(profile=ann, time__lt=datetime(2018, 5, 1, tzinfo=UTC))) == [kept]
    # A retry of the detached event still counts once.
    result = event_record(
        data=EventInput(action="page.visit", client={"clientId": ann.pk}, salt="march-2018", time=old), source="api"
    )
    assert result.duplicate
    assert event_partitions_detach(before=datetime(2018, 5, 1, tzinfo=UTC), drop=True) == ["profiles_event_p201804"]
    assert "profiles_event_p201804" not in _tables()


@pytest.mark.django_db
def test_the_command_lists_ensures_and_detaches(capsys):
    call_command("event_partitions", "ensure", "--ahead", "1")
    call_command("event_partitions", "list")
    out = capsys.readouterr().out
    assert partition_name(month_start(timezone.now())) in out and "profiles_event_default\tdefault" in out
    event_partition_create(datetime(2017, 1, 1, tzinfo=UTC))
    call_command("event_partitions", "detach", "--before", "2017-02", "--drop")
    assert "Detached and dropped: profiles_event_p201701" in capsys.readouterr().out


@pytest.mark.django_db
def test_the_dedup_table_refuses_a_second_salt_whichever_way_the_event_comes(make_profile):
    ann = make_profile(email="ann@example.com")
    now = timezone.now()
    events_insert(rows=[NewEvent(profile_id=ann.pk, action="a.b", time=now, is_system=False, salt="bulk-1")])
    salt = EventSalt.objects.get(salt="bulk-1")
    assert (salt.event_id, salt.time) == (Event.objects.get(salt="bulk-1").pk, now)
    with pytest.raises(IntegrityError), transaction.atomic():
        Event.objects.create(profile=ann, action="a.b", time=now, salt="bulk-1")
    with pytest.raises(IntegrityError), transaction.atomic():
        events_insert(rows=[NewEvent(profile_id=ann.pk, action="a.b", time=now, salt="bulk-1")])
    assert Event.objects.filter(salt="bulk-1").count() == 1
    # Unsalted events are not recorded there.
    Event.objects.create(profile=ann, action="a.b", time=now)
    assert EventSalt.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_migration_moves_existing_events_into_monthly_partitions():
    call_command("migrate", "profiles", "0006_request_id", verbosity=0)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT relkind FROM pg_class WHERE relname = 'profiles_event'")
            assert cursor.fetchone()[0] == "r"  # a plain table again
            profile_id = Profile.objects.create(uuid="u-mig", correlation_id="c").pk  # the profile table is unchanged
            cursor.execute(
                """
                INSERT INTO profiles_event (profile_id, action, label, time, params, source, actor, is_system, salt)
                VALUES (%(p)s, 'page.visit', '', '2024-02-10T10:00Z', '{}', 'api', '', false, 'feb'),
                       (%(p)s, 'page.visit', '', '2024-02-11T10:00Z', '{}', 'api', '', false, NULL),
                       (%(p)s, 'cart.add', '', '2025-07-01T00:00Z', '{"sku": 1}', 'api', '', false, 'jul')
                RETURNING id
                """,
                {"p": profile_id},
            )
            ids = sorted(row[0] for row in cursor.fetchall())
    finally:
        call_command("migrate", "profiles", verbosity=0)
    moved = {e.pk: e for e in Event.objects.filter(profile_id=profile_id)}
    assert sorted(moved) == ids
    assert moved[ids[2]].params == {"sku": 1}
    assert [_partition_of(i) for i in ids] == [
        "profiles_event_p202402",
        "profiles_event_p202402",
        "profiles_event_p202507",
    ]
    assert set(EventSalt.objects.values_list("salt", "event_id")) == {("feb", ids[0]), ("jul", ids[2])}
    # The id sequence goes on after the moved rows, and a moved salt still refuses a repeat.
    profile = Profile.objects.get(pk=profile_id)
    new = Event.objects.create(profile=profile, action="page.visit", time=timezone.now())
    assert new.pk > ids[-1]
    with pytest.raises(IntegrityError), transaction.atomic():
        Event.objects.create(profile=profile, action="page.visit", time=timezone.now(), salt="feb")
