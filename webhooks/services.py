"""Every write of the webhooks app: subscriptions, the outbox (messages written with their change), resends.

Outbox rows are written by ``webhooks.receivers`` from the services' signals, inside the transaction of
the change, one INSERT per signal whatever its size (``outbox_write``); the delivery worker
(``webhooks.delivery``) sends them only once that transaction has committed.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from crm.errors import Conflict, NotFound, ValidationFailed
from crm.models import ApiKey
from profiles.api.synerise.documents import profile_document_from_snapshot
from profiles.selectors import profile_snapshot_params, profile_snapshot_sql
from webhooks.models import Event, EventType, Message, MessageState, Subscription
from webhooks.segments import segment_exists, subscription_segment_filter
from webhooks.targets import target_resolve

NOTIFY_CHANNEL = "crm_webhooks"
SECRET_PREFIX = "whsec_"
KEY_PREFIX_RE = re.compile(r"^[A-Za-z0-9]{1,%d}$" % ApiKey._meta.get_field("prefix").max_length)  # noqa: UP031
URL_MAX_LENGTH = Subscription._meta.get_field("url").max_length


def secret_generate() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


# --- subscriptions ------------------------------------------------------------------------------------


def _validated(*, url, events, segment, ignore_keys) -> dict[str, Any]:
    if not isinstance(url, str) or not url.strip():
        raise ValidationFailed("url is required.", field="url")
    url = url.strip()
    if len(url) > URL_MAX_LENGTH:
        raise ValidationFailed(f"url is longer than {URL_MAX_LENGTH} characters.", field="url")
    target_resolve(url)
    events = list(dict.fromkeys(events or []))
    if not events:
        raise ValidationFailed("events must name at least one event type.", field="events")
    for i, name in enumerate(events):
        if name not in EventType.values:
            raise ValidationFailed(
                f"{name!r} is not an event type; one of {', '.join(EventType.values)}.", field=f"events[{i}]"
            )
    if segment is not None and not segment_exists(segment):
        raise NotFound(f"Segment {segment} does not exist.", field="segment")
    ignore_keys = list(dict.fromkeys(ignore_keys or []))
    for i, prefix in enumerate(ignore_keys):
        if not isinstance(prefix, str) or not KEY_PREFIX_RE.match(prefix):
            raise ValidationFailed(
                "ignoreKeys holds API key prefixes: the letters and digits between 'crm_' and the next '_'.",
                field=f"ignoreKeys[{i}]",
            )
    return {"url": url, "events": events, "segment_id": segment, "ignore_keys": ignore_keys}


@transaction.atomic
def subscription_create(
    *, url: str, events: Sequence[str], segment: int | None = None, ignore_keys: Sequence[str] = (), enabled=True
) -> tuple[Subscription, str]:
    """A new subscription and its secret (returned here once; stored encrypted)."""
    values = _validated(url=url, events=events, segment=segment, ignore_keys=ignore_keys)
    secret = secret_generate()
    subscription = Subscription.objects.create(**values, enabled=bool(enabled), secret=secret)
    return subscription, secret


@transaction.atomic
def subscription_update(
    *,
    subscription_id: int,
    url: str,
    events: Sequence[str],
    segment: int | None = None,
    ignore_keys: Sequence[str] = (),
    enabled: bool = True,
) -> Subscription:
    """Replace a subscription's settings; enabling one that was disabled clears why it was."""
    subscription = subscription_get(subscription_id=subscription_id, lock=True)
    values = _validated(url=url, events=events, segment=segment, ignore_keys=ignore_keys)
    for name, value in values.items():
        setattr(subscription, name, value)
    if enabled and not subscription.enabled:
        subscription.disabled_reason, subscription.disabled_at, subscription.failing_since = "", None, None
    elif not enabled and subscription.enabled:
        subscription.disabled_reason, subscription.disabled_at = "Disabled by hand.", timezone.now()
    subscription.enabled = bool(enabled)
    subscription.save()
    return subscription


def subscription_get(*, subscription_id, lock: bool = False) -> Subscription:
    queryset = Subscription.objects.select_for_update() if lock else Subscription.objects
    subscription = queryset.filter(pk=subscription_id).first()
    if subscription is None:
        raise NotFound(f"Webhook {subscription_id} does not exist.", field="id")
    return subscription


@transaction.atomic
def subscription_delete(*, subscription_id: int) -> None:
    """Delete a subscription with its messages and their attempts."""
    subscription_get(subscription_id=subscription_id, lock=True).delete()


@transaction.atomic
def message_resend(*, subscription_id: int, message_id: int, now: datetime | None = None) -> Message:
    """One more attempt of the message (same ``webhook-id`` and body), as soon as the worker gets to it."""
    subscription = subscription_get(subscription_id=subscription_id)
    message = Message.objects.select_for_update().filter(pk=message_id, subscription=subscription).first()
    if message is None:
        raise NotFound(f"Message {message_id} of webhook {subscription_id} does not exist.", field="messageId")
    if not subscription.enabled:
        raise Conflict(f"Webhook {subscription_id} is disabled; enable it to resend.", field="enabled")
    if message.state != MessageState.PENDING:
        message.manual = True
    message.state = MessageState.PENDING
    message.next_attempt_at = now or timezone.now()
    message.save(update_fields=["state", "next_attempt_at", "manual"])
    _notify()
    return message


# --- the outbox -------------------------------------------------------------------------------------


@dataclass
class OutboxEvent:
    """One event about to be recorded for every subscription that wants it; ``document``: the payload gets
    the profile's Synerise document as it is right after the change (snapshot taken in the INSERT)."""

    type: str
    profile_id: int | None
    data: dict[str, Any]
    actor: str = ""
    time: datetime = field(default_factory=timezone.now)
    document: bool = False


def _timestamp(value: datetime) -> str:
    return value.astimezone(timezone.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _actor_key_prefix(actor: str) -> str | None:
    kind, _, rest = (actor or "").partition(":")
    return rest if kind == "api-key" and rest else None


def outbox_enabled() -> bool:
    return getattr(settings, "WEBHOOKS_ENABLED", True)


def subscriptions_for(event_types: Iterable[str], *, actor: str = "") -> list[Subscription]:
    """Enabled subscriptions to any of these types that do not ignore the actor's API key (one query)."""
    types = list(event_types)
    queryset = Subscription.objects.filter(enabled=True, events__overlap=types)
    if prefix := _actor_key_prefix(actor):
        queryset = queryset.exclude(ignore_keys__contains=[prefix])
    return list(queryset.only("pk", "events", "segment_id", "ignore_keys"))


OUTBOX_SQL = f"""
WITH r AS MATERIALIZED (
    SELECT nextval(pg_get_serial_sequence('webhooks_event', 'id')) AS id, q.*
    FROM (SELECT * FROM json_to_recordset(%(rows)s::json)
                 AS j(o int, t text, pid bigint, a text, n timestamptz, d jsonb, x boolean, s bigint[])
          ORDER BY j.o) AS q
),
e AS (
    INSERT INTO webhooks_event (id, event_type, profile_id, actor, time, data, snapshot)
    SELECT r.id, r.t, r.pid, r.a, r.n, r.d, CASE WHEN r.x THEN {profile_snapshot_sql("r.pid")} END FROM r
),
m AS (
    INSERT INTO webhooks_message
           (event_id, subscription_id, uid, profile_id, state, attempt_count, next_attempt_at, manual)
    SELECT r.id, s.id, gen_random_uuid(), r.pid, 'pending', 0, r.n, false
    FROM r CROSS JOIN LATERAL unnest(r.s) WITH ORDINALITY AS s(id, k)
    ORDER BY r.id, s.k
    RETURNING 1
)
SELECT count(*), pg_notify('{NOTIFY_CHANNEL}', '') FROM m
"""  # noqa: S608


def outbox_write(events: Sequence[OutboxEvent], subscriptions: Sequence[Subscription] | None = None) -> int:
    """Record messages for ``events`` in one statement (events, their snapshots and messages); returns how many
    messages.

    Each event goes to the enabled subscriptions of its type that do not ignore its actor's API key and,
    for a segment-limited subscription, whose segment holds its profile now (evaluated once per
    subscription for all the events' profiles). Events without a profile (an import's end) skip the
    segment rule; a profile's erasure reaches every subscriber of ``profile.deleted`` (it names no one).
    A NOTIFY in the same statement wakes the delivery worker at commit.
    """
    if not events:
        return 0
    if subscriptions is None:
        subscriptions = subscriptions_for({e.type for e in events})
    if not subscriptions:
        return 0
    members: dict[int, set[int] | None] = {}
    for subscription in subscriptions:
        if subscription.segment_id is None:
            members[subscription.pk] = None
        else:
            ids = {e.profile_id for e in events if e.type != EventType.PROFILE_DELETED}
            members[subscription.pk] = subscription_segment_filter(subscription, ids)
    rows = []
    for event in events:
        prefix = _actor_key_prefix(event.actor)
        targets = [
            s.pk
            for s in subscriptions
            if event.type in s.events
            and not (prefix and prefix in s.ignore_keys)
            and (
                members[s.pk] is None
                or event.profile_id is None
                or event.type == EventType.PROFILE_DELETED
                or event.profile_id in members[s.pk]
            )
        ]
        if targets:
            data = {**event.data, "profile": None} if event.document else event.data  # null: the profile is gone
            row = {"o": len(rows), "t": event.type, "pid": event.profile_id, "a": event.actor[:256], "d": data}
            rows.append({**row, "n": event.time.isoformat(), "x": event.document, "s": targets})
    if not rows:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            OUTBOX_SQL,
            {"rows": json.dumps(rows, cls=DjangoJSONEncoder, separators=(",", ":")), **profile_snapshot_params()},
        )
        return cursor.fetchone()[0]


def event_payload(event: Event) -> dict[str, Any]:
    """The JSON a message sends: ``type``, ``timestamp`` and ``data`` (the profile's document rendered from the
    event's snapshot, when it has one)."""
    data = dict(event.data)
    if event.snapshot is not None:
        data["profile"] = profile_document_from_snapshot(event.snapshot)
    first = {key: data.pop(key) for key in ("clientId", "actor", "source", "requestId", "profile") if key in data}
    return {"type": event.event_type, "timestamp": _timestamp(event.time), "data": {**first, **data}}


def event_body(event: Event) -> str:
    """The exact bytes sent and signed: the same for every attempt of a message."""
    return json.dumps(event_payload(event), cls=DjangoJSONEncoder, separators=(",", ":"), ensure_ascii=False)


def _notify() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, '')", [NOTIFY_CHANNEL])
