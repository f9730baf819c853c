"""Receivers of the services' signals: each writes that signal's system events in one INSERT.

They record; they decide nothing. Connected in ``ProfilesConfig.ready()``.
``SYSTEM_EVENTS_ENABLED = False`` switches them off (only to measure their cost, benchmark B8).
"""

from __future__ import annotations

from django.conf import settings
from django.dispatch import receiver
from django.utils import timezone

from consents import signals as consent_signals
from profiles import signals
from profiles.models import EventAction
from profiles.services.events import NewEvent, events_insert


def _enabled() -> bool:
    return settings.SYSTEM_EVENTS_ENABLED


def _event(profile_id, action: str, *, source: str, actor: str, label: str = "", params=None, time=None) -> NewEvent:
    return NewEvent(
        profile_id=profile_id,
        action=action,
        time=time or timezone.now(),
        label=label,
        params=params or {},
        source=source or "",
        actor=actor or "",
        is_system=True,
    )


@receiver(signals.profile_created, dispatch_uid="events.profile_created")
def on_profile_created(sender, *, profiles, source="", actor="", **kwargs):
    if not _enabled():
        return
    now = timezone.now()
    events_insert(
        rows=[
            _event(p.pk, EventAction.PROFILE_CREATED, source=source, actor=actor, time=now, label="Profile created")
            for p in profiles
        ]
    )


@receiver(signals.profile_changed, dispatch_uid="events.profile_changed")
def on_profile_changed(sender, *, changes, source="", actor="", **kwargs):
    """One ``profile.updated`` per profile with the old and new value of each changed attribute."""
    if not _enabled():
        return
    now = timezone.now()
    rows = []
    for profile_id, diff in changes:
        real = {name: {"old": old, "new": new} for name, (old, new) in diff.items() if old != new}
        if real:
            label = ", ".join(sorted(real))
            rows.append(
                _event(
                    profile_id,
                    EventAction.PROFILE_UPDATED,
                    source=source,
                    actor=actor,
                    time=now,
                    label=f"Changed {label}",
                    params={"changes": real},
                )
            )
    events_insert(rows=rows)


@receiver(signals.profile_identified, dispatch_uid="events.profile_identified")
def on_profile_identified(sender, *, profiles, source="", actor="", **kwargs):
    if not _enabled():
        return
    now = timezone.now()
    events_insert(
        rows=[
            _event(
                p.pk,
                EventAction.PROFILE_IDENTIFIED,
                source=source,
                actor=actor,
                time=now,
                label="Profile recognized",
                params={k: v for k, v in (("email", p.email), ("customId", p.custom_id)) if v},
            )
            for p in profiles
        ]
    )


@receiver(signals.profile_deleted, dispatch_uid="events.profile_deleted")
def on_profile_deleted(sender, *, snapshots, source="", actor="", **kwargs):
    """One ``profile.deleted`` per erased profile: ids only, no personal data (its timeline went with it); the
    event's actor, source and request id say who asked and when."""
    if not _enabled():
        return
    now = timezone.now()
    events_insert(
        rows=[
            _event(
                None,
                EventAction.PROFILE_DELETED,
                source=source,
                actor=actor,
                time=now,
                label=f"Profile {snap['clientId']} deleted",
                params={
                    "clientId": snap["clientId"],
                    "mergedClientIds": list(snap.get("mergedClientIds") or []),
                    "erasureId": snap.get("erasureId"),
                },
            )
            for snap in snapshots
        ]
    )


@receiver(signals.tags_changed, dispatch_uid="events.tags_changed")
def on_tags_changed(sender, *, changes, source="", actor="", **kwargs):
    if not _enabled():
        return
    now = timezone.now()
    rows = []
    for profile_id, added, removed in changes:
        for action, tags in ((EventAction.TAG_ADDED, added), (EventAction.TAG_REMOVED, removed)):
            rows.extend(
                _event(
                    profile_id,
                    action,
                    source=source,
                    actor=actor,
                    time=now,
                    label=tag.name,
                    params={"tagId": tag.pk, "name": tag.name},
                )
                for tag in tags
            )
    events_insert(rows=rows)


@receiver(signals.profiles_merged, dispatch_uid="events.profiles_merged")
def on_profiles_merged(sender, *, survivor, merged, source="", actor="", **kwargs):
    """One ``profile.merged`` on the survivor per profile merged in, holding that profile's snapshot."""
    if not _enabled():
        return
    now = timezone.now()
    events_insert(
        rows=[
            _event(
                survivor.pk,
                EventAction.PROFILE_MERGED,
                source=source,
                actor=actor,
                time=now,
                label=f"Profile {snap.get('clientId')} merged in",
                # The merge steps' undo data (event and order ids) stays in the MergeRecord, not on the timeline.
                params={
                    "mergedClientId": snap.get("clientId"),
                    "reason": snap.get("reason"),
                    "snapshot": {k: v for k, v in snap.items() if k != "steps"},
                },
            )
            for snap in merged
        ]
    )


@receiver(signals.profile_unmerged, dispatch_uid="events.profile_unmerged")
def on_profile_unmerged(sender, *, survivor, restored, notes=(), source="", actor="", **kwargs):
    """``profile.unmerged`` on both sides: the survivor and the profile restored from it."""
    if not _enabled():
        return
    now = timezone.now()
    params = {"survivorClientId": survivor.pk, "restoredClientId": restored.pk, "notes": list(notes or [])}
    events_insert(
        rows=[
            _event(pid, EventAction.PROFILE_UNMERGED, source=source, actor=actor, time=now, label=label, params=params)
            for pid, label in (
                (survivor.pk, f"Profile {restored.pk} split off"),
                (restored.pk, f"Restored from profile {survivor.pk}"),
            )
        ]
    )


def connect() -> None:
    """Receivers of the consents' signal: a decision is an event on the profile's timeline."""
    consent_signals.consent_changed.connect(on_consent_changed, dispatch_uid="events.consent_changed")


def on_consent_changed(sender, *, changes, source="", actor="", **kwargs):
    """``consent.changed`` per decision (old → new state, with its ledger record). A decision removed because
    its profile is merged away records nothing here: the survivor's ``profile.merged`` covers it."""
    if not _enabled():
        return
    events_insert(
        rows=[
            _event(
                change.client_id,
                EventAction.CONSENT_CHANGED,
                source=source,
                actor=actor,
                time=change.changed_at,
                label=f"{change.agreement_key}: {change.old_status or 'none'} → {change.new_status}",
                params={
                    "agreement": change.agreement_key,
                    "agreementId": change.agreement_id,
                    "old": change.old_status or None,
                    "new": change.new_status,
                    "recordId": change.record_id,
                },
            )
            for change in changes
            if change.new_status
        ]
    )
