"""Receivers that record outbox messages from the services' signals, in the transaction of the change.

They record; they decide nothing. Each signal costs one query for the subscriptions that want it and,
when there is any, one INSERT of outbox rows for all its events (``outbox_write``), which captures the
profiles whose documents they carry; the bodies are rendered by the delivery worker. ``WEBHOOKS_ENABLED = False``
switches them off.
"""

from __future__ import annotations

from django.dispatch import receiver
from django.utils import timezone

from crm.request_id import current_request_id
from profiles import signals
from webhooks.models import EventType
from webhooks.services import OutboxEvents, outbox_enabled, outbox_write, subscriptions_for


def _shared(*, source: str, actor: str, **more) -> dict:
    """What every event of one change set says alike (the payload's ``clientId`` is each event's profile)."""
    return {"actor": actor or "", "source": source or "", "requestId": current_request_id(), **more}


def _record(event_type: str, actor: str, build) -> None:
    """Ask for the subscriptions first: with none, nothing is built."""
    if not outbox_enabled():
        return
    subscriptions = subscriptions_for(event_types=[event_type], actor=actor)
    if subscriptions:
        outbox_write(runs=build(), subscriptions=subscriptions)


def _profiles_run(event_type: str, profile_ids, *, source: str, actor: str, changes=None) -> list[OutboxEvents]:
    """A change set's ``profile.*`` events, with the document; ``changes``: each profile's changed fields (none:
    an empty ``changes`` for all)."""
    if changes is None:
        shared, data = _shared(source=source, actor=actor, changes={}), None
    else:
        shared, data = _shared(source=source, actor=actor), [{"changes": diff} for diff in changes]
    return [
        OutboxEvents(
            type=event_type,
            profile_ids=profile_ids,
            data=data,
            actor=actor,
            time=timezone.now(),
            document=True,
            shared=shared,
        )
    ]


@receiver(signals.profile_created, dispatch_uid="webhooks.profile_created")
def on_profile_created(sender, *, profiles, source="", actor="", **kwargs):
    _record(
        EventType.PROFILE_CREATED,
        actor,
        lambda: _profiles_run(EventType.PROFILE_CREATED, [p.pk for p in profiles], source=source, actor=actor),
    )


@receiver(signals.profile_changed, dispatch_uid="webhooks.profile_changed")
def on_profile_changed(sender, *, changes, source="", actor="", **kwargs):
    """``profile.updated`` per profile with a real change: each changed field's old and new value."""
    real: dict[int, dict] = {}
    for profile_id, diff in changes:
        fields = {name: {"old": old, "new": new} for name, (old, new) in diff.items() if old != new}
        if fields:
            real.setdefault(profile_id, {}).update(fields)
    if real:  # nothing changed: not even the subscriptions are read
        _record(
            EventType.PROFILE_UPDATED,
            actor,
            lambda: _profiles_run(
                EventType.PROFILE_UPDATED, list(real), source=source, actor=actor, changes=list(real.values())
            ),
        )


@receiver(signals.profile_identified, dispatch_uid="webhooks.profile_identified")
def on_profile_identified(sender, *, profiles, source="", actor="", **kwargs):
    _record(
        EventType.PROFILE_IDENTIFIED,
        actor,
        lambda: _profiles_run(EventType.PROFILE_IDENTIFIED, [p.pk for p in profiles], source=source, actor=actor),
    )


@receiver(signals.profile_deleted, dispatch_uid="webhooks.profile_deleted")
def on_profile_deleted(sender, *, snapshots, source="", actor="", **kwargs):
    """The erased profile's clientId and who erased it: no personal data."""
    _record(
        EventType.PROFILE_DELETED,
        actor,
        lambda: [
            OutboxEvents(
                type=EventType.PROFILE_DELETED,
                profile_ids=[snap["clientId"] for snap in snapshots],
                actor=actor,
                shared=_shared(source=source, actor=actor),
            )
        ],
    )


@receiver(signals.profiles_merged, dispatch_uid="webhooks.profiles_merged")
def on_profiles_merged(sender, *, survivor, merged, source="", actor="", **kwargs):
    _record(
        EventType.PROFILE_MERGED,
        actor,
        lambda: [
            OutboxEvents(
                type=EventType.PROFILE_MERGED,
                profile_ids=[survivor.pk] * len(merged),
                data=[{"mergedClientId": snap.get("clientId"), "reason": snap.get("reason")} for snap in merged],
                actor=actor,
                shared=_shared(source=source, actor=actor, survivorClientId=survivor.pk),
            )
        ],
    )


@receiver(signals.profile_unmerged, dispatch_uid="webhooks.profile_unmerged")
def on_profile_unmerged(sender, *, survivor, restored, notes=(), source="", actor="", **kwargs):
    _record(
        EventType.PROFILE_UNMERGED,
        actor,
        lambda: [
            OutboxEvents(
                type=EventType.PROFILE_UNMERGED,
                profile_ids=[survivor.pk],
                actor=actor,
                shared=_shared(
                    source=source,
                    actor=actor,
                    survivorClientId=survivor.pk,
                    restoredClientId=restored.pk,
                    notes=list(notes or []),
                ),
            )
        ],
    )


@receiver(signals.tags_changed, dispatch_uid="webhooks.tags_changed")
def on_tags_changed(sender, *, changes, source="", actor="", **kwargs):
    """``tag.added`` and ``tag.removed`` per profile and tag, in the order of the changes."""
    if not outbox_enabled():
        return
    subscriptions = subscriptions_for(event_types=[EventType.TAG_ADDED, EventType.TAG_REMOVED], actor=actor)
    if not subscriptions:
        return
    now, shared = timezone.now(), _shared(source=source, actor=actor)
    runs: list[OutboxEvents] = []
    for profile_id, added, removed in changes:
        for event_type, tags in ((EventType.TAG_ADDED, added), (EventType.TAG_REMOVED, removed)):
            for tag in tags:
                if not runs or runs[-1].type != event_type:
                    runs.append(
                        OutboxEvents(type=event_type, profile_ids=[], data=[], actor=actor, time=now, shared=shared)
                    )
                runs[-1].profile_ids.append(profile_id)
                runs[-1].data.append({"tag": {"id": tag.pk, "name": tag.name}})
    outbox_write(runs=runs, subscriptions=subscriptions)


def on_consent_changed(sender, *, changes, source="", actor="", **kwargs):
    """Per decision: the agreement, the old and new state and the ledger record. A decision removed because
    its profile was merged away sends nothing (the survivor's ``profile.merged`` covers it)."""

    def build() -> list[OutboxEvents]:
        shared, runs = _shared(source=source, actor=actor), []
        for change in changes:
            if not change.new_status:
                continue
            if not runs or runs[-1].time != change.changed_at:  # a run shares its time
                runs.append(
                    OutboxEvents(
                        type=EventType.CONSENT_CHANGED,
                        profile_ids=[],
                        data=[],
                        actor=actor,
                        time=change.changed_at,
                        shared=shared,
                    )
                )
            runs[-1].profile_ids.append(change.client_id)
            runs[-1].data.append(
                {
                    "agreement": change.agreement_key,
                    "agreementId": change.agreement_id,
                    "old": change.old_status or None,
                    "new": change.new_status,
                    "recordId": change.record_id,
                }
            )
        return runs

    _record(EventType.CONSENT_CHANGED, actor, build)


def on_segment_entered(sender, *, pairs, segments=None, cause="", **kwargs):
    """``segment.entered`` per (profile, segment) pair; ``segments`` names them; ``cause``: write, time, commerce."""
    _segment_events(EventType.SEGMENT_ENTERED, pairs, segments or {}, cause=cause)


def on_segment_left(sender, *, pairs, segments=None, cause="", **kwargs):
    """``segment.left`` per (profile, segment) pair."""
    _segment_events(EventType.SEGMENT_LEFT, pairs, segments or {}, cause=cause)


def _segment_events(event_type, pairs, names, *, cause):
    actor = "system"  # membership changes are the platform's own (a write, time passing, commerce figures)
    _record(
        event_type,
        actor,
        lambda: [
            OutboxEvents(
                type=event_type,
                profile_ids=[pid for pid, _ in pairs],
                data=[{"segment": {"id": sid, "name": names.get(sid, "")}} for _, sid in pairs],
                actor=actor,
                shared=_shared(source=cause, actor=actor),
            )
        ],
    )


def on_import_finished(sender, *, import_job, status="", counts=None, dry_run=False, source="", actor="", **kwargs):
    """``import.finished``: the import's id, status and counts (no profile); a dry run sends nothing."""
    if dry_run:
        return
    _record(
        EventType.IMPORT_FINISHED,
        actor,
        lambda: [
            OutboxEvents(
                type=EventType.IMPORT_FINISHED,
                profile_ids=[None],
                actor=actor,
                shared=_shared(
                    source=source,
                    actor=actor,
                    importId=str(getattr(import_job, "pk", import_job)),
                    status=status,
                    counts=dict(counts or {}),
                ),
            )
        ],
    )


OPTIONAL = [
    ("consents.signals", "consent_changed", on_consent_changed),
    ("segments.signals", "segment_entered", on_segment_entered),
    ("segments.signals", "segment_left", on_segment_left),
    ("imports.signals", "import_finished", on_import_finished),
]


def connect_optional() -> None:
    """Receivers of signals other apps define (or will): consents, segments, imports."""
    from importlib import import_module

    for module_name, signal_name, handler in OPTIONAL:
        try:
            module = import_module(module_name)
        except ImportError:
            continue
        signal = getattr(module, signal_name, None)
        if signal is not None:
            signal.connect(handler, dispatch_uid=f"webhooks.{signal_name}")
