"""Receivers: profile writes mark profiles for the membership refresh; membership changes become timeline events.

They record; they decide nothing. Connected in ``SegmentsConfig.ready()``.
"""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone

from consents.signals import consent_changed
from profiles import signals as profile_signals
from profiles.models import EventAction
from profiles.services.events import NewEvent, events_insert
from segments import signals
from segments.membership import touched_record


def on_profiles(sender, *, profiles, **kwargs):
    touched_record(p.pk for p in profiles)


def on_changed(sender, *, changes, **kwargs):
    touched_record(pid for pid, _ in changes)


def on_tags(sender, *, changes, **kwargs):
    touched_record(pid for pid, _, _ in changes)


def on_merged(sender, *, survivor, **kwargs):
    touched_record([survivor.pk])


def on_unmerged(sender, *, survivor, restored, **kwargs):
    touched_record([survivor.pk, restored.pk])


def on_activity(sender, *, profile_ids, **kwargs):
    touched_record(profile_ids)


def on_consents(sender, *, changes, **kwargs):
    touched_record(change.client_id for change in changes if change.new_status)


def on_rfm(sender, **kwargs):
    from django.db import transaction

    from segments.tasks import segments_refresh_commerce_task

    if _commerce_segments():
        transaction.on_commit(segments_refresh_commerce_task.enqueue)


def _commerce_segments() -> bool:
    from segments.models import Segment

    return Segment.objects.filter(uses_commerce=True).exists()


def _events(action: str, pairs, names, cause) -> None:
    if not settings.SYSTEM_EVENTS_ENABLED:
        return
    now = timezone.now()
    verb = "entered" if action == EventAction.SEGMENT_ENTERED else "left"
    events_insert(
        rows=[
            NewEvent(
                profile_id=pid,
                action=action,
                time=now,
                label=f"{verb} {names.get(sid, sid)}",
                params={"segmentId": sid, "name": names.get(sid, ""), "cause": cause},
                source="segments",
                actor="system",
                is_system=True,
            )
            for pid, sid in pairs
        ]
    )


def on_entered(sender, *, pairs, segments, cause, **kwargs):
    _events(EventAction.SEGMENT_ENTERED, pairs, segments, cause)


def on_left(sender, *, pairs, segments, cause, **kwargs):
    _events(EventAction.SEGMENT_LEFT, pairs, segments, cause)


def on_segment_saved_or_deleted(sender, **kwargs):
    from segments.membership import live_cache_clear

    live_cache_clear()


def connect() -> None:
    from django.db.models.signals import post_delete, post_save

    from segments.models import Segment

    post_save.connect(on_segment_saved_or_deleted, sender=Segment, dispatch_uid="segments.cache_saved")
    post_delete.connect(on_segment_saved_or_deleted, sender=Segment, dispatch_uid="segments.cache_deleted")
    for signal, receiver in (
        (profile_signals.profile_created, on_profiles),
        (profile_signals.profile_identified, on_profiles),
        (profile_signals.profile_changed, on_changed),
        (profile_signals.tags_changed, on_tags),
        (profile_signals.profiles_merged, on_merged),
        (profile_signals.profile_unmerged, on_unmerged),
        (profile_signals.activity_recorded, on_activity),
        (profile_signals.rfm_recomputed, on_rfm),
        (signals.segment_entered, on_entered),
        (signals.segment_left, on_left),
    ):
        signal.connect(receiver, dispatch_uid=f"segments.{receiver.__name__}")

    consent_changed.connect(on_consents, dispatch_uid="segments.on_consents")
