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
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from crm.errors import Conflict, NotFound, ValidationFailed
from crm.models import ApiKey
from profiles.documents import profile_document_from_snapshot, profile_documents_by_ids
from profiles.selectors import profile_snapshots_sql
from webhooks.models import Event, EventType, Message, MessageState, Subscription
from webhooks.segments import segment_exists, subscription_segment_filter
from webhooks.targets import target_resolve, url_split

NOTIFY_CHANNEL = "crm_webhooks"
SECRET_PREFIX = "whsec_"
KEY_PREFIX_RE = re.compile(r"^[A-Za-z0-9]{1,%d}$" % ApiKey._meta.get_field("prefix").max_length)  # noqa: UP031
URL_MAX_LENGTH = Subscription._meta.get_field("url").max_length


def secret_generate() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


# --- subscriptions ------------------------------------------------------------------------------------


def _validated(*, url, events, segment, ignore_keys, enabled) -> dict[str, Any]:
    """The settings checked. The URL's address is checked (resolved, public) for an enabled subscription; a disabled
    one, which sends nothing, only needs a well-formed URL: its address is checked when it is enabled."""
    if not isinstance(url, str) or not url.strip():
        raise ValidationFailed("url is required.", field="url")
    url = url.strip()
    if len(url) > URL_MAX_LENGTH:
        raise ValidationFailed(f"url is longer than {URL_MAX_LENGTH} characters.", field="url")
    if enabled:
        target_resolve(url)
    else:
        url_split(url)
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
    values = _validated(url=url, events=events, segment=segment, ignore_keys=ignore_keys, enabled=enabled)
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
    values = _validated(url=url, events=events, segment=segment, ignore_keys=ignore_keys, enabled=enabled)
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


@dataclass(slots=True)
class OutboxEvents:
    """Events of one change set about to be recorded, in order, for every subscription that wants them: one per
    profile in ``profile_ids`` (``None``: an event about no profile), all of one type, actor and time.

    Each payload's ``data`` is its profile's id as ``clientId``, then ``shared``, what all of them say alike (who,
    from where, which request), then its own entry in ``data`` (``None``: nothing of their own). ``document``: the
    payloads carry the profile's Synerise document (as the change left it: captured when the events are recorded).
    """

    type: str
    profile_ids: list[int | None]
    data: list[dict[str, Any]] | None = None
    actor: str = ""
    time: datetime = field(default_factory=timezone.now)
    document: bool = False
    shared: dict[str, Any] = field(default_factory=dict)


def _timestamp(value: datetime) -> str:
    return value.astimezone(timezone.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _actor_key_prefix(actor: str) -> str | None:
    kind, _, rest = (actor or "").partition(":")
    return rest if kind == "api-key" and rest else None


def outbox_enabled() -> bool:
    return settings.WEBHOOKS_ENABLED


def subscriptions_for(*, event_types: Iterable[str], actor: str = "") -> list[Subscription]:
    """Enabled subscriptions to any of these types that do not ignore the actor's API key (one query)."""
    types = list(event_types)
    queryset = Subscription.objects.filter(enabled=True, events__overlap=types)
    if prefix := _actor_key_prefix(actor):
        queryset = queryset.exclude(ignore_keys__contains=[prefix])
    return list(queryset.only("pk", "events", "segment_id", "ignore_keys"))


@cache
def _outbox_sql() -> str:
    """The outbox INSERT, of runs of events (``OutboxEvents``, split where their subscriptions differ) in order: ``p``
    a run's profile ids, ``d`` their own data. The second parameter lists the profiles whose documents the events
    carry: each is captured as the change left it (``profiles.selectors.profile_snapshots_sql``, the row and extras
    every read of a document uses), by this very statement in the change's transaction."""

    return f"""
WITH documents AS (SELECT %(documents)s::bigint[] AS ids),
snap AS ({profile_snapshots_sql(ids="SELECT ids FROM documents")}),
ins AS (
    INSERT INTO webhooks_event
           (event_type, profile_id, actor, time, data, document, subscription_ids, fanned_out, snapshot)
    SELECT g.t, u.p, g.a, g.n, g.b || COALESCE(u.d, '{{}}'), g.x, g.s, false, snap.snapshot
    FROM json_to_recordset(%(runs)s::json)
         AS g(o int, t text, a text, n timestamptz, b jsonb, x boolean, s bigint[], p bigint[], d jsonb[])
         CROSS JOIN LATERAL unnest(g.p, g.d) WITH ORDINALITY AS u(p, d, k)
         LEFT JOIN snap ON g.x AND snap.id = u.p
    ORDER BY g.o, u.k
    RETURNING 1
)
SELECT count(*), pg_notify('{NOTIFY_CHANNEL}', '') FROM ins
"""  # noqa: S608


def _targets(runs: Sequence[OutboxEvents], subscriptions: Sequence[Subscription]):
    """Each run, split where its events' subscriptions differ: (run, first, last + 1, subscription ids).

    An event goes to the enabled subscriptions of its type that do not ignore its actor's API key and, for a
    segment-limited subscription, whose segment holds its profile now (evaluated once per subscription for all
    the profiles). Events without a profile (an import's end) skip the segment rule; a profile's erasure reaches
    every subscriber of ``profile.deleted`` (it names no one)."""
    members: dict[int, set[int] | None] = {}
    for subscription in subscriptions:
        if subscription.segment_id is None:
            members[subscription.pk] = None
        else:
            ids = {pid for r in runs if r.type != EventType.PROFILE_DELETED for pid in r.profile_ids}
            members[subscription.pk] = subscription_segment_filter(subscription, ids)
    for run in runs:
        prefix = _actor_key_prefix(run.actor)
        wanted = [s for s in subscriptions if run.type in s.events and not (prefix and prefix in s.ignore_keys)]
        if not wanted:
            continue
        everyone = [s.pk for s in wanted]
        if all(members[s.pk] is None for s in wanted) or run.type == EventType.PROFILE_DELETED:
            yield run, 0, len(run.profile_ids), everyone
            continue
        start, last = 0, None
        for i, pid in enumerate(run.profile_ids):
            targets = (
                everyone if pid is None else [s.pk for s in wanted if members[s.pk] is None or pid in members[s.pk]]
            )
            if targets != last:
                if last:
                    yield run, start, i, last
                start, last = i, targets
        if last:
            yield run, start, len(run.profile_ids), last


def outbox_write(*, runs: Sequence[OutboxEvents], subscriptions: Sequence[Subscription] | None = None) -> int:
    """Record the events of ``runs`` for the subscriptions that want them (``_targets``), in one INSERT; returns
    how many were recorded. The same statement captures the profile of each event that carries its document, as
    the transaction has it then (``Event.snapshot``). A NOTIFY in it wakes the delivery worker at commit."""
    if not runs:
        return 0
    if subscriptions is None:
        subscriptions = subscriptions_for(event_types={r.type for r in runs})
    if not subscriptions:
        return 0
    rows, documents = [], set()
    for run, start, stop, targets in _targets(runs, subscriptions):
        profile_ids = run.profile_ids[start:stop]
        if run.document:
            documents.update(pid for pid in profile_ids if pid is not None)
        rows.append(
            {
                "o": len(rows),
                "t": run.type,
                "a": run.actor[:256],
                "n": run.time.isoformat(),
                "x": run.document,
                "s": targets,
                "b": run.shared,
                "p": profile_ids,
                "d": None if run.data is None else run.data[start:stop],
            }
        )
    if not rows:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            _outbox_sql(),
            {
                "runs": json.dumps(rows, cls=DjangoJSONEncoder, separators=(",", ":")),
                # an array literal: sent as text, read by the server (psycopg adapts a list one item at a time)
                "documents": "{" + ",".join(map(str, sorted(documents))) + "}",
            },
        )
        return cursor.fetchone()[0]


FAN_OUT_SQL = """
WITH ev AS (
    UPDATE webhooks_event e SET fanned_out = true, body = u.b, snapshot = NULL
    FROM json_to_recordset(%s::json) AS u(i bigint, b text)
    WHERE e.id = u.i
    RETURNING e.id, e.profile_id, e.time, e.subscription_ids
),
m AS (
    INSERT INTO webhooks_message
           (event_id, subscription_id, uid, profile_id, state, attempt_count, next_attempt_at, manual)
    SELECT ev.id, s.id, gen_random_uuid(), ev.profile_id, 'pending', 0,
           -- behind a message of the profile that waits for its retry: that retry's time (see delivery.HOLD_SQL)
           GREATEST(ev.time, (SELECT max(p.next_attempt_at) FROM webhooks_message p
                              WHERE p.state = 'pending' AND p.subscription_id = s.id AND p.profile_id = ev.profile_id)),
           false
    FROM ev CROSS JOIN LATERAL unnest(ev.subscription_ids) WITH ORDINALITY AS u(id, k)
         JOIN webhooks_subscription s ON s.id = u.id
    ORDER BY ev.id, u.k
    RETURNING 1
)
SELECT count(*) FROM m
"""
FAN_OUT_LOCK = 0x77656268  # one fan-out at a time keeps message ids in event order (a profile's order)


@transaction.atomic
def outbox_fan_out(*, limit: int = 1000) -> int:
    """Turn committed outbox events into one message per subscription, oldest first; returns the messages made.

    Each event's body is rendered here, once, with the profile's document as its change left it (the snapshot its
    outbox row holds), and stored: every attempt and resend of its messages sends these bytes. One fan-out
    runs at a time (an advisory lock; a caller that does not get it returns 0 at once), so message ids
    follow event ids and a profile's messages keep their change order.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [FAN_OUT_LOCK])
        if not cursor.fetchone()[0]:
            return 0
        events = list(Event.objects.filter(fanned_out=False).order_by("id")[:limit])
        if not events:
            return 0
        rendered = _rendered(events)
        cursor.execute(FAN_OUT_SQL, [json.dumps([{"i": i, "b": b} for i, b in rendered.items()])])
        return cursor.fetchone()[0]


def event_payload(*, event: Event, document: dict | None = None) -> dict[str, Any]:
    """The JSON a message sends: ``type``, ``timestamp`` and ``data`` (with ``profile``, the document, for the
    events that carry one)."""
    if event.body is not None:
        return json.loads(event.body)
    data = dict(event.data)
    data.pop("clientId", None)  # an event recorded before the profile's id was left out of its data
    first = {"clientId": event.profile_id}
    first |= {key: data.pop(key) for key in ("actor", "source", "requestId") if key in data}
    if event.document:
        first["profile"] = document
    return {"type": event.event_type, "timestamp": _timestamp(event.time), "data": {**first, **data}}


def _rendered(events: list[Event]) -> dict[int, str]:
    """Bodies of events not sent yet, each with its profile's document as its change left it (the snapshot taken
    by the outbox INSERT). An event written without one (before snapshots were taken) gets the document as it is
    now (one query)."""

    wanted = sorted({e.profile_id for e in events if e.document and e.snapshot is None and e.profile_id is not None})
    current = {doc["clientId"]: doc for doc in profile_documents_by_ids(wanted)} if wanted else {}

    def document(event: Event) -> dict | None:
        if not event.document:
            return None
        if event.snapshot is not None:
            return profile_document_from_snapshot(event.snapshot)
        return current.get(event.profile_id)

    return {
        e.pk: json.dumps(
            event_payload(event=e, document=document(e)),
            cls=DjangoJSONEncoder,
            separators=(",", ":"),
            ensure_ascii=False,
        )
        for e in events
    }


def events_render(*, events: Iterable[Event]) -> dict[int, str]:
    """Each event's body: the one stored when it was fanned out (rendered now only for one that has none)."""
    events = list(events)
    bodies = {e.pk: e.body for e in events if e.body is not None}
    return bodies | _rendered([e for e in events if e.body is None])


def events_payloads(*, events: Iterable[Event]) -> dict[int, dict[str, Any]]:
    """What each event's messages send (or, not sent yet, would send now), for the log; stores nothing."""
    return {pk: json.loads(body) for pk, body in events_render(events=events).items()}


def event_body(*, event: Event) -> str:
    return events_render(events=[event])[event.pk]


def _notify() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, '')", [NOTIFY_CHANNEL])


# --- retention ----------------------------------------------------------------------------------------

PURGE_BATCH = 5000

PURGE_MESSAGES_SQL = """
WITH doomed AS (
    SELECT m.id FROM webhooks_message m JOIN webhooks_event e ON e.id = m.event_id
    WHERE (m.state = 'delivered' AND m.delivered_at < %(delivered)s)
       OR (m.state = 'failed' AND e.time < %(failed)s)
    LIMIT %(batch)s
    FOR UPDATE OF m SKIP LOCKED
),
attempts AS (
    DELETE FROM webhooks_attempt a USING doomed WHERE a.message_id = doomed.id RETURNING 1
),
messages AS (
    DELETE FROM webhooks_message m USING doomed WHERE m.id = doomed.id RETURNING 1
)
SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM attempts)
"""

PURGE_EVENTS_SQL = """
WITH doomed AS (
    SELECT e.id FROM webhooks_event e
    WHERE e.fanned_out AND e.time < %(before)s
      AND NOT EXISTS (SELECT 1 FROM webhooks_message m WHERE m.event_id = e.id)
    LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED
)
DELETE FROM webhooks_event e USING doomed WHERE e.id = doomed.id
"""


def outbox_purge(*, now: datetime | None = None, batch: int = PURGE_BATCH) -> dict[str, int]:
    """Delete what the outbox no longer needs: delivered messages ``WEBHOOK_DELIVERED_RETENTION_DAYS`` after their
    delivery and given-up ones ``WEBHOOK_FAILED_RETENTION_DAYS`` after their change, with their attempts, then the
    events left without messages (older than the shorter retention). Pending messages are never touched. Works in
    transactions of ``batch`` messages; returns how many rows of each went."""
    now = now or timezone.now()
    delivered = now - timedelta(days=settings.WEBHOOK_DELIVERED_RETENTION_DAYS)
    failed = now - timedelta(days=settings.WEBHOOK_FAILED_RETENTION_DAYS)
    counts = {"messages": 0, "attempts": 0, "events": 0}
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(PURGE_MESSAGES_SQL, {"delivered": delivered, "failed": failed, "batch": batch})
            messages, attempts = cursor.fetchone()
        counts["messages"] += messages
        counts["attempts"] += attempts
        if messages < batch:
            break
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(PURGE_EVENTS_SQL, {"before": min(delivered, failed), "batch": batch})
            events = cursor.rowcount
        counts["events"] += events
        if events < batch:
            break
    return counts
