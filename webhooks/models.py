"""Webhook subscriptions, their messages (the outbox) and each message's delivery attempts."""

from __future__ import annotations

import uuid

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q

from crm.crypto import EncryptedTextField

__all__ = ["Attempt", "Event", "EventType", "Message", "MessageState", "Subscription"]


class EventType(models.TextChoices):
    PROFILE_CREATED = "profile.created"
    PROFILE_UPDATED = "profile.updated"
    PROFILE_IDENTIFIED = "profile.identified"
    PROFILE_DELETED = "profile.deleted"
    PROFILE_MERGED = "profile.merged"
    PROFILE_UNMERGED = "profile.unmerged"
    CONSENT_CHANGED = "consent.changed"
    TAG_ADDED = "tag.added"
    TAG_REMOVED = "tag.removed"
    SEGMENT_ENTERED = "segment.entered"
    SEGMENT_LEFT = "segment.left"
    IMPORT_FINISHED = "import.finished"


class Subscription(models.Model):
    """A URL with the event types it receives, signed with its own secret (kept encrypted: we sign with it)."""

    url = models.URLField(max_length=2000)
    events = ArrayField(models.CharField(max_length=40, choices=EventType.choices))
    # The segment whose members' changes alone are sent (null: every profile). An integer until the
    # segments table exists; then a foreign key.
    segment_id = models.BigIntegerField(null=True, blank=True)
    ignore_keys = ArrayField(
        models.CharField(max_length=16),
        default=list,
        blank=True,
        help_text="API key prefixes whose changes are never sent here (loop prevention).",
    )
    enabled = models.BooleanField(default=True)
    secret = EncryptedTextField(editable=False)
    disabled_reason = models.CharField(max_length=300, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    failing_since = models.DateTimeField(
        null=True, blank=True, help_text="First failed attempt since the last success."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.url} ({', '.join(self.events)})"


class MessageState(models.TextChoices):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class Event(models.Model):
    """The outbox row: one change as the webhooks tell it, written in the transaction of the change (one INSERT
    per change set), with the subscriptions it goes to. The worker turns it into one message per subscription
    (``fanned_out``) after the commit.

    ``data`` is the payload's ``data`` as known at the change (ids, actor, request id, the changed fields);
    ``snapshot`` is the profile as the change left it (its row and its document's extras, captured by the same
    INSERT, for an event that carries the document); ``body`` is the JSON sent, rendered from them once at the
    fan-out (``snapshot`` is then cleared) and sent unchanged by every attempt and resend.
    """

    event_type = models.CharField(max_length=40, choices=EventType.choices)
    profile_id = models.BigIntegerField(null=True, blank=True)
    actor = models.CharField(max_length=256, blank=True)
    time = models.DateTimeField()
    data = models.JSONField(default=dict)
    document = models.BooleanField(default=False, help_text="The payload carries the profile's document.")
    subscription_ids = ArrayField(models.BigIntegerField(), default=list)
    fanned_out = models.BooleanField(default=False)
    snapshot = models.TextField(null=True, blank=True, help_text="The profile after the change, until the fan-out.")
    body = models.TextField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["id"], condition=Q(fanned_out=False), name="webhooks_event_fan_out")]

    def __str__(self) -> str:
        return f"{self.event_type} {self.profile_id or ''}".strip()


class Message(models.Model):
    """One event for one subscription, with one ``webhook-id``; written in the transaction of the change.

    Its id orders a profile's messages to a subscription: the next is sent only when the one before it
    is delivered or given up.
    """

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="messages", db_index=False)
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="messages", db_index=False)
    # Random, so unique without an index (which would cost every outbox INSERT); sent as ``msg_<hex>``.
    uid = models.UUIDField(default=uuid.uuid4, editable=False)
    # The event's profile, copied for the per-profile order. No foreign key: a message outlives its
    # profile (a merge, an erasure) and is never blocked by one.
    profile_id = models.BigIntegerField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=MessageState.choices, default=MessageState.PENDING)
    attempt_count = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    manual = models.BooleanField(default=False, help_text="A resend is due: one attempt, no retries after it.")
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["subscription", "id"], name="webhooks_message_log"),
            # Per subscription, so the claim reads only enabled subscriptions' due messages (a disabled one's
            # backlog is never walked over). Its condition names next_attempt_at so that only a query bounding
            # next_attempt_at (the claim's scan in due order) can use it: the claim's per-profile check and the
            # other per-profile lookups, which do not, go to webhooks_message_profile_order even when the
            # statistics were taken with nothing pending (both partial indexes then look empty, and a full scan of
            # this one per row cost a claim 120 ms).
            models.Index(
                fields=["subscription", "next_attempt_at", "id"],
                condition=Q(state="pending", next_attempt_at__isnull=False),
                name="webhooks_message_due",
            ),
            models.Index(
                fields=["subscription", "profile_id", "id"],
                condition=Q(state="pending"),
                name="webhooks_message_profile_order",
            ),
        ]

    def __str__(self) -> str:
        return self.webhook_id

    @property
    def webhook_id(self) -> str:
        return webhook_id_of(self.uid)


def webhook_id_of(uid) -> str:
    return f"msg_{uuid.UUID(str(uid)).hex}"


class Attempt(models.Model):
    """One HTTP request of a message: when, the answer's status, how long it took, what came back."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attempts")
    attempted_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    response_excerpt = models.TextField(blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["attempted_at", "id"]

    def __str__(self) -> str:
        return f"{self.attempted_at:%Y-%m-%d %H:%M:%S} {self.status_code or self.error[:40]}"

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300
