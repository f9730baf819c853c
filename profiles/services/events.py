"""Events: the set-based insert every system event goes through, custom events (``POST /v4/events/custom``), notes.

System events are written by ``profiles.receivers`` from the services' signals, one INSERT per signal
whatever its size (``events_insert``). Custom events resolve their profile (creating an anonymous one for
an unknown uuid), are deduplicated by ``eventSalt`` through the dedup table (``EventSalt``, which a trigger
fills for every salted event whatever writes it), and move
``lastActivityDate``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from crm.errors import DomainError, ValidationFailed
from crm.request_id import current_request_id
from profiles import signals
from profiles.merge_registry import rows_move, rows_move_back
from profiles.models import Event, EventAction, EventSalt, IdentifierKind, Profile
from profiles.normalize import identifier_normalize
from profiles.selectors import identifier_owners, profile_lookup
from profiles.services.identity.input import ProfileInput
from profiles.services.identity.write import profile_update, profile_upsert
from profiles.tombstones import profile_missing

ACTION_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)+$")
ACTION_MAX_LENGTH = Event._meta.get_field("action").max_length
LABEL_MAX_LENGTH = Event._meta.get_field("label").max_length
SALT_MAX_LENGTH = Event._meta.get_field("salt").max_length
NOTE_MAX_LENGTH = 10_000
FORM_SUBMIT = "form.submit"


@dataclass
class NewEvent:
    """One row for ``events_insert``."""

    profile_id: int | None
    action: str
    time: datetime
    label: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    actor: str = ""
    is_system: bool = True
    salt: str | None = None
    request_id: str = field(default_factory=current_request_id)


def _json(value) -> str:
    return json.dumps(value, cls=DjangoJSONEncoder, separators=(",", ":"))


def events_insert(*, rows: list[NewEvent]) -> int:
    """Insert any number of events in one statement; returns the count.

    The rows travel as one JSON parameter read by ``json_to_recordset``: adapting nine Python lists
    to arrays element by element cost more than the INSERT itself (docs/benchmarks.md, B1–B3, B8).
    """
    if not rows:
        return 0
    payload = _json(
        [
            {
                "p": r.profile_id,
                "a": r.action,
                "l": r.label[:LABEL_MAX_LENGTH],
                "t": r.time.isoformat(),  # full precision (DjangoJSONEncoder keeps only milliseconds)
                "j": r.params,
                "s": r.source[:32],
                "r": r.actor[:256],
                "y": r.is_system,
                "x": r.salt,
                "q": r.request_id[:128],
            }
            for r in rows
        ]
    )
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO profiles_event
                   (profile_id, action, label, time, params, source, actor, is_system, salt, request_id)
            SELECT p, a, l, t, j, s, r, y, x, q
            FROM json_to_recordset(%s::json)
                 AS u(p bigint, a text, l text, t timestamptz, j jsonb, s text, r text, y boolean, x text, q text)
            """,
            [payload],
        )
        return cursor.rowcount


def profiles_activity_advance(*, activity: dict[int, datetime]) -> None:
    """Move ``lastActivityDate`` forward (never back) for many profiles in one UPDATE."""
    if not activity:
        return
    ids, times = zip(*activity.items(), strict=True)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE profiles_profile AS p SET last_activity_date = u.t
            FROM unnest(%s::bigint[], %s::timestamptz[]) AS u(id, t)
            WHERE p.id = u.id AND (p.last_activity_date IS NULL OR p.last_activity_date < u.t)
            """,
            [list(ids), list(times)],
        )
    signals.activity_recorded.send(sender=Event, profile_ids=sorted(ids))


# --- validation shared by events and transactions --------------------------------------------------


def time_validate(*, value: datetime | None, field_name: str = "time") -> datetime:
    """An event or order time: aware, and not in the future beyond ``EVENT_FUTURE_TOLERANCE_SECONDS``."""
    now = timezone.now()
    if value is None:
        return now
    if not isinstance(value, datetime):
        raise ValidationFailed(f"{field_name} must be a date-time.", field=field_name, code="field.datetime")
    if timezone.is_naive(value):
        value = timezone.make_aware(value, timezone.UTC)
    tolerance = settings.EVENT_FUTURE_TOLERANCE_SECONDS
    if value > now + timedelta(seconds=tolerance):
        raise ValidationFailed(
            f"{field_name} is in the future ({value.isoformat()}); at most {tolerance} s of clock skew is accepted.",
            field=field_name,
            code="field.future",
        )
    return value


def action_validate(*, action, custom: bool = True) -> str:
    if not isinstance(action, str) or not action:
        raise ValidationFailed("action is required, e.g. 'page.visit'.", field="action", code="field.required")
    if len(action) > ACTION_MAX_LENGTH or not ACTION_RE.match(action):
        raise ValidationFailed(
            f"action '{action[:80]}' must be dot-separated words of letters, digits, '_' or '-' "
            f"(e.g. 'form.submit'), at most {ACTION_MAX_LENGTH} characters.",
            field="action",
            code="event.action_format",
        )
    if custom and action in EventAction.SYSTEM:
        raise ValidationFailed(
            f"action '{action}' is reserved for system events.", field="action", code="event.action_reserved"
        )
    return action


# --- resolving the profile an event or order names --------------------------------------------------


def _reraise_under(exc: DomainError, where: str) -> DomainError:
    if exc.field and not exc.field.startswith(f"{where}."):
        exc.field = f"{where}.{'id' if exc.field == 'clientId' else exc.field}"
    return exc


def event_profile_resolve(*, identifiers: dict[str, Any], source: str, actor: str, where: str = "client") -> Profile:
    """The profile an event names: by clientId (must exist), else by identifiers, creating it when none is known."""
    try:
        if "clientId" in identifiers:
            return profile_lookup(kind="clientId", value=identifiers["clientId"])
        normalized = {kind: identifier_normalize(kind, value) for kind, value in identifiers.items()}
        owners = identifier_owners(pairs=normalized.items())
        profile_ids = set(owners.values())
        if len(owners) == len(normalized) and len(profile_ids) == 1:
            return Profile.objects.get(pk=profile_ids.pop())
        # Unknown identifiers: create (an anonymous profile for a bare uuid) or attach them.
        return profile_upsert(data=ProfileInput(identifiers=dict(identifiers)), source=source, actor=actor).profile
    except DomainError as exc:
        raise _reraise_under(exc, where) from None


# --- custom events ----------------------------------------------------------------------------------


@dataclass
class EventInput:
    action: str
    client: dict[str, Any]  # kind ("clientId", "uuid", "email", "customId", "phone") -> raw value
    label: str = ""
    time: datetime | None = None
    salt: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class EventResult:
    profile: Profile | None
    event: Event | None
    duplicate: bool = False


class _Duplicate(Exception):
    pass


def _salt_taken(exc: IntegrityError) -> bool:
    """The unique violation came from the dedup table: the eventSalt was recorded already."""
    diag = getattr(exc.__cause__, "diag", None)
    return diag is not None and diag.table_name == EventSalt._meta.db_table


def _clean_event(data: EventInput) -> EventInput:
    action = action_validate(action=data.action)
    if not isinstance(data.label, str):
        raise ValidationFailed("label must be a string.", field="label", code="field.type")
    if len(data.label) > LABEL_MAX_LENGTH:
        raise ValidationFailed(f"label is longer than {LABEL_MAX_LENGTH} characters.", field="label")
    if data.salt is not None and (not isinstance(data.salt, str) or not data.salt or len(data.salt) > SALT_MAX_LENGTH):
        raise ValidationFailed(
            f"eventSalt must be a non-empty string of at most {SALT_MAX_LENGTH} characters.", field="eventSalt"
        )
    if not isinstance(data.params, dict):
        raise ValidationFailed("params must be an object.", field="params", code="field.type")
    return EventInput(
        action=action,
        client=data.client,
        label=data.label,
        time=time_validate(value=data.time),
        salt=data.salt,
        params=data.params,
    )


def _identify(profile: Profile, identifiers: dict[str, Any], email, *, source: str, actor: str) -> Profile:
    """A form.submit carrying an e-mail: identify the profile through identity resolution."""
    if not isinstance(email, str):
        raise ValidationFailed("params.email must be a string.", field="params.email", code="field.type")
    try:
        normalized = identifier_normalize(IdentifierKind.EMAIL, email)
        if profile.email == normalized:
            return profile
        if "clientId" in identifiers:
            if profile.email is not None:
                # A recognized profile named by clientId keeps its e-mail: the form's address is recorded only.
                return profile
            data = ProfileInput(identifiers={IdentifierKind.EMAIL: normalized})
            return profile_update(profile=profile, data=data, source=source, actor=actor).profile
        data = ProfileInput(identifiers={**identifiers, IdentifierKind.EMAIL: normalized})
        return profile_upsert(data=data, source=source, actor=actor).profile
    except DomainError as exc:
        if exc.field in ("email", "identifiers") and exc.status == 400:
            exc.field = "params.email"
        raise


def _profile_hold(profile_id: int) -> None:
    """Hold the profile against deletion until this transaction ends.

    The event's foreign key is checked only at COMMIT, so an erasure committing in between would turn the
    write into an IntegrityError. ``FOR KEY SHARE`` lets concurrent updates of the row go on, makes an erasure
    wait for this write (which it then erases with the rest), or, when the erasure came first, finds no row:
    the write is refused as the erasure's tombstone says (410)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM profiles_profile WHERE id = %s FOR KEY SHARE", [profile_id])
        if cursor.fetchone() is None:
            raise profile_missing(profile_id)


def event_record(*, data: EventInput, source: str, actor: str = "") -> EventResult:
    """Record one custom event; a repeated ``eventSalt`` records nothing and reports ``duplicate``.

    Everything happens in one transaction: a bad identifier, a conflict or a duplicate leaves no trace
    (no anonymous profile created, no identification, no event).
    """
    data = _clean_event(data)
    identifiers = data.client
    if not identifiers:
        raise ValidationFailed("client needs one of: id, uuid, email, customId.", field="client")
    if data.salt is not None and EventSalt.objects.filter(salt=data.salt).exists():
        return EventResult(profile=None, event=None, duplicate=True)
    try:
        with transaction.atomic():
            profile = event_profile_resolve(identifiers=identifiers, source=source, actor=actor)
            _profile_hold(profile.pk)
            if data.action == FORM_SUBMIT and data.params.get("email") is not None:
                profile = _identify(profile, identifiers, data.params["email"], source=source, actor=actor)
            try:
                with transaction.atomic():
                    event = Event.objects.create(
                        profile=profile,
                        action=data.action,
                        label=data.label,
                        time=data.time,
                        params=data.params,
                        source=source,
                        actor=actor,
                        is_system=False,
                        salt=data.salt,
                    )
            except IntegrityError as exc:
                if _salt_taken(exc):
                    raise _Duplicate from exc
                raise
            profiles_activity_advance(activity={profile.pk: data.time})
    except _Duplicate:
        return EventResult(profile=None, event=None, duplicate=True)
    return EventResult(profile=profile, event=event)


# --- notes ------------------------------------------------------------------------------------------


def note_add(*, profile: Profile, text: str, author: str, source: str) -> Event:
    """A note on a profile (text, author, time): a system event on its timeline."""
    if not isinstance(text, str) or not text.strip():
        raise ValidationFailed("A note needs some text.", field="text", code="field.required")
    text = text.strip()
    if len(text) > NOTE_MAX_LENGTH:
        raise ValidationFailed(f"A note is at most {NOTE_MAX_LENGTH} characters.", field="text")
    with transaction.atomic():
        if not Profile.objects.filter(pk=profile.pk).exists():
            raise profile_missing(profile.pk)
        event = Event.objects.create(
            profile=profile,
            action=EventAction.NOTE_ADDED,
            label=text.splitlines()[0][:LABEL_MAX_LENGTH],
            time=timezone.now(),
            params={"text": text, "author": author},
            source=source,
            actor=author,
            is_system=True,
        )
        signals.note_added.send(sender=Event, events=[event], source=source, actor=author)
    return event


# --- merge steps (profiles.merge_registry) --------------------------------------------------


def events_merge_step(*, ctx) -> dict:
    """The merged-in profile's timeline moves to the survivor; the ids are kept to move them back on undo."""
    return {"ids": rows_move(Event, from_profile_id=ctx.merged.pk, to_profile_id=ctx.survivor.pk)}


def events_unmerge_step(*, ctx) -> list[str]:
    """Move the restored profile's events back (those still on the survivor)."""
    ids = (ctx.data or {}).get("ids", [])
    return rows_move_back(Event, ids=ids, from_profile_id=ctx.survivor.pk, to_profile_id=ctx.restored.pk)
