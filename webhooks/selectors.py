"""Reads of the webhooks app: a subscription's message log, newest first, keyset-paged on the message id; the
outbox's backlog per subscription (metrics and the admin's System page)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import Prefetch

from crm.errors import ValidationFailed
from crm.paging import cursor_decode, cursor_encode
from webhooks.models import Attempt, Message, Subscription


@dataclass
class MessagePage:
    messages: list[Message]
    next_cursor: str | None


def _cursor_encode(message_id: int) -> str:
    return cursor_encode(text=f"m{message_id}")


def _cursor_decode(cursor: str) -> int:
    try:
        raw = cursor_decode(cursor=cursor)
        if not raw.startswith("m"):
            raise ValueError
        value = int(raw[1:])
        if value < 1:
            raise ValueError
        return value
    except ValueError:
        raise ValidationFailed("cursor is not one this API handed out.", field="cursor") from None


def subscription_messages(*, subscription_id: int, cursor: str | None = None, limit: int = 50) -> MessagePage:
    """One page of messages with their attempts: two queries."""
    queryset = Message.objects.filter(subscription_id=subscription_id)
    if cursor:
        queryset = queryset.filter(pk__lt=_cursor_decode(cursor))
    messages = list(
        queryset.order_by("-id")
        .select_related("event")
        .prefetch_related(Prefetch("attempts", queryset=Attempt.objects.order_by("attempted_at", "id")))[: limit + 1]
    )
    more = len(messages) > limit
    messages = messages[:limit]
    return MessagePage(messages, _cursor_encode(messages[-1].pk) if more else None)


@dataclass(frozen=True)
class Backlog:
    subscription_id: int
    url: str
    enabled: bool
    pending: int  # messages waiting to be delivered (retries included) and changes not yet fanned out to it
    oldest: datetime | None  # the change of the oldest pending message (the one with the smallest event id)


BACKLOG_SQL = """
WITH pending AS (
    SELECT subscription_id, count(*) AS n, min(event_id) AS first_event
    FROM webhooks_message WHERE state = 'pending' GROUP BY subscription_id
), unfanned AS (
    SELECT sid AS subscription_id, count(*) AS n, min(id) AS first_event
    FROM webhooks_event, unnest(subscription_ids) AS sid WHERE NOT fanned_out GROUP BY sid
)
SELECT s.id, coalesce(p.n, 0) + coalesce(u.n, 0), e.time
FROM webhooks_subscription s
LEFT JOIN pending p ON p.subscription_id = s.id
LEFT JOIN unfanned u ON u.subscription_id = s.id
LEFT JOIN webhooks_event e ON e.id = least(p.first_event, u.first_event)
ORDER BY s.id
"""


def subscriptions_backlog() -> list[Backlog]:
    """Every subscription with its backlog (pending messages, and committed changes not yet fanned out into
    messages) and the oldest one's change time. It reads the pending messages and the events awaiting the fan-out
    only (partial indexes hold them), whatever the size of the delivered history."""
    with connection.cursor() as cursor:
        cursor.execute(BACKLOG_SQL)
        rows = cursor.fetchall()
    subscriptions = {
        pk: (url, enabled) for pk, url, enabled in Subscription.objects.values_list("pk", "url", "enabled")
    }
    return [
        Backlog(pk, *subscriptions.get(pk, ("", False)), pending=pending, oldest=oldest) for pk, pending, oldest in rows
    ]


def fan_out_backlog() -> tuple[int, datetime | None]:
    """Outbox events committed and not yet fanned out into messages, and the oldest one's change time."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), min(time) FROM webhooks_event WHERE NOT fanned_out")
        count, oldest = cursor.fetchone()
    return count, oldest
