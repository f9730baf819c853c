"""Reads of the webhooks app: a subscription's message log, newest first, keyset-paged on the message id."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Prefetch

from crm.errors import ValidationFailed
from crm.paging import cursor_decode, cursor_encode
from webhooks.models import Attempt, Message


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
