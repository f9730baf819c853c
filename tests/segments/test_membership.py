"""Live membership: writes mark their profiles and a task refreshes them (with segment.entered / segment.left
on the timeline), creating or editing fills without events, time and RFM refresh on their own, merges keep
the rows right."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from consents.models import Agreement
from consents.services import consent_set
from profiles.models import Event, Profile, ProfileCommerce, Tag
from profiles.services import ProfileInput, profile_update
from profiles.services.events import EventInput, event_record
from profiles.services.merge import profile_merge, profile_unmerge
from profiles.services.tags import tags_add, tags_remove
from profiles.services.transactions import TransactionInput, transactions_record
from profiles.tasks import rfm_recompute
from segments import membership
from segments.membership import segment_fill, segments_refresh_time_relative, segments_refresh_touched
from segments.models import Segment, SegmentMembership, TouchedProfile
from segments.services import segment_create, segment_matches, segment_update


@pytest.fixture(autouse=True)
def _fresh_cache():
    membership.live_cache_clear()
    yield
    membership.live_cache_clear()


def members(segment) -> set[int]:
    return set(SegmentMembership.objects.filter(segment=segment).values_list("profile_id", flat=True))


def timeline(profile, action) -> list[Event]:
    return list(Event.objects.filter(profile=profile, action=action))


@pytest.fixture
def vip(db):
    return Tag.objects.create(name="VIP")


def test_creating_fills_without_events_and_writes_move_profiles_in_and_out(
    make_profile, vip, immediate_tasks, django_capture_on_commit_callbacks
):
    ann = make_profile(email="ann@example.com")
    bob = make_profile(email="bob@example.com")
    tags_add(profiles=[ann], tags=[vip], source="tests")
    with django_capture_on_commit_callbacks(execute=True):
        segment = segment_create(name="VIPs", tree={"tag": "vip"}, actor="tests")
    assert members(segment) == {ann.pk}
    assert not Event.objects.filter(action__startswith="segment.").exists()  # filling is silent
    assert Segment.objects.get(pk=segment.pk).last_count == 1

    with django_capture_on_commit_callbacks(execute=True):
        tags_add(profiles=[bob], tags=[vip], source="tests")
    assert members(segment) == {ann.pk, bob.pk}
    [entered] = timeline(bob, "segment.entered")
    assert entered.params == {"segmentId": segment.pk, "name": "VIPs", "cause": "write"} and entered.is_system
    assert not TouchedProfile.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        tags_remove(profiles=[ann], tags=[vip], source="tests")
    assert members(segment) == {bob.pk}
    assert len(timeline(ann, "segment.left")) == 1


def test_a_write_records_its_profiles_and_plans_one_refresh(make_profile, vip, django_capture_on_commit_callbacks):
    Segment.objects.create(name="Warsaw", tree={"field": "city", "op": "eq", "value": "warsaw"})
    ann = make_profile(email="ann@example.com")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        profile_update(profile=ann, data=ProfileInput(fields={"city": "Warsaw"}), source="tests", actor="tests")
    assert list(TouchedProfile.objects.values_list("profile_id", flat=True)) == [ann.pk]
    assert any(getattr(cb, "__name__", "") == "refresh_schedule" for cb in callbacks)
    assert segments_refresh_touched() == 1
    assert set(SegmentMembership.objects.values_list("profile_id", flat=True)) == {ann.pk}


def test_without_segments_writes_record_nothing(make_profile):
    make_profile(email="ann@example.com", city="Warsaw")
    assert not TouchedProfile.objects.exists()


def test_consents_events_and_orders_touch_their_profiles(
    make_profile, immediate_tasks, django_capture_on_commit_callbacks
):
    ann = make_profile(email="ann@example.com")
    granted = Segment.objects.create(name="Mailable", tree={"agreement": "email", "state": "granted"})
    busy = Segment.objects.create(name="Busy", tree={"event": "page.visit", "op": "gte", "count": 2, "withinDays": 7})
    buyer = Segment.objects.create(name="Buyer", tree={"commerce": "totalSpent", "op": "gt", "value": 50})
    with django_capture_on_commit_callbacks(execute=True):
        consent_set(profile=ann, agreement=Agreement.objects.get(key="email"), state="granted", source="tests")
    assert members(granted) == {ann.pk}
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            event_record(data=EventInput(action="page.visit", client={"clientId": ann.pk}), source="tests")
    assert members(busy) == {ann.pk}
    with django_capture_on_commit_callbacks(execute=True):
        transactions_record(
            items=[TransactionInput(order_id="o1", client={"clientId": ann.pk}, value="99.00", currency="PLN")],
            source="tests",
        )
    assert members(buyer) == {ann.pk}


def test_time_relative_segments_refresh_on_schedule_with_events(make_profile):
    ann = make_profile(email="ann@example.com")
    segment = Segment.objects.create(
        name="Active", tree={"event": "page.visit", "op": "gte", "count": 1, "withinDays": 7}, time_relative=True
    )
    Event.objects.create(
        profile=ann, action="page.visit", time=timezone.now() - timedelta(days=6, hours=23, minutes=59, seconds=58)
    )
    segment_fill(segment=segment)
    assert members(segment) == {ann.pk}
    Event.objects.filter(profile=ann, action="page.visit").update(time=timezone.now() - timedelta(days=8))
    assert segments_refresh_time_relative() == 1
    assert members(segment) == set()
    [left] = timeline(ann, "segment.left")
    assert left.params["cause"] == "time"


def test_rfm_recompute_refreshes_commerce_segments(make_profile, immediate_tasks, django_capture_on_commit_callbacks):
    ann = make_profile(email="ann@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        transactions_record(
            items=[TransactionInput(order_id="o1", client={"clientId": ann.pk}, value="99.00", currency="PLN")],
            source="tests",
        )
    rfm = ProfileCommerce.objects.get(profile=ann)
    segment = Segment.objects.create(
        name="Champions",
        tree={"commerce": "rfmSegment", "op": "eq", "value": rfm.rfm_segment or "x"},
        uses_commerce=True,
    )
    ProfileCommerce.objects.filter(profile=ann).update(rfm_segment="")  # as before a first scoring
    segment_fill(segment=segment)
    assert members(segment) == set()
    with django_capture_on_commit_callbacks(execute=True):
        rfm_recompute.call()
    assert members(segment) == {ann.pk}
    assert timeline(ann, "segment.entered")[0].params["cause"] == "commerce"


def test_editing_refills_and_segment_matches_reads_the_tree(
    make_profile, vip, immediate_tasks, django_capture_on_commit_callbacks
):
    ann = make_profile(email="ann@example.com", city="Warsaw")
    bob = make_profile(email="bob@example.com", city="Kraków")
    with django_capture_on_commit_callbacks(execute=True):
        segment = segment_create(name="City", tree={"field": "city", "op": "eq", "value": "warsaw"})
    assert members(segment) == {ann.pk}
    assert segment_matches(segment=segment, profile_ids=[ann.pk, bob.pk]) == {ann.pk}
    with django_capture_on_commit_callbacks(execute=True):
        segment_update(segment=segment, tree={"field": "city", "op": "eq", "value": "kraków"})
    assert members(segment) == {bob.pk}
    assert segment_matches(segment=segment.pk, profile_ids=[ann.pk, bob.pk]) == {bob.pk}
    assert not Event.objects.filter(action__startswith="segment.").exists()


def test_merge_and_unmerge_keep_membership_right(
    make_profile, vip, immediate_tasks, django_capture_on_commit_callbacks
):
    ann = make_profile(email="ann@example.com")
    visitor = make_profile(uuid="5e3a1f2c-0000-4000-8000-000000000001")
    tags_add(profiles=[visitor], tags=[vip], source="tests")
    with django_capture_on_commit_callbacks(execute=True):
        segment = segment_create(name="VIPs", tree={"tag": "VIP"})
    assert members(segment) == {visitor.pk}
    with django_capture_on_commit_callbacks(execute=True):
        profile_merge(survivor=ann, others=[visitor], source="tests", forced=True)
    assert members(segment) == {ann.pk}  # the tag moved with the merge; the merged-away row is gone
    with django_capture_on_commit_callbacks(execute=True):
        profile_unmerge(profile=Profile.objects.get(pk=ann.pk), previous_client_id=visitor.pk, source="tests")
    assert members(segment) == {visitor.pk}
