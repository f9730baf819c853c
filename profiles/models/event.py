from django.contrib.postgres.indexes import BrinIndex
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now

from crm.request_id import current_request_id


class EventAction:
    """Actions of the system events the receivers write; custom events may not use them."""

    PROFILE_CREATED = "profile.created"
    PROFILE_UPDATED = "profile.updated"
    PROFILE_IDENTIFIED = "profile.identified"
    PROFILE_MERGED = "profile.merged"
    PROFILE_UNMERGED = "profile.unmerged"
    PROFILE_DELETED = "profile.deleted"
    TAG_ADDED = "tag.added"
    TAG_REMOVED = "tag.removed"
    CONSENT_CHANGED = "consent.changed"
    NOTE_ADDED = "note.added"
    TRANSACTION_CHARGE = "transaction.charge"
    TRANSACTION_RETURN = "transaction.return"
    SEGMENT_ENTERED = "segment.entered"
    SEGMENT_LEFT = "segment.left"

    SYSTEM = frozenset(
        {
            PROFILE_CREATED,
            PROFILE_UPDATED,
            PROFILE_IDENTIFIED,
            PROFILE_MERGED,
            PROFILE_UNMERGED,
            PROFILE_DELETED,
            TAG_ADDED,
            TAG_REMOVED,
            CONSENT_CHANGED,
            NOTE_ADDED,
            SEGMENT_ENTERED,
            SEGMENT_LEFT,
        }
    )


class Event(models.Model):
    """One entry of a profile's activity timeline: a custom event the customer did, or a system event.

    System events (``is_system``) are written by the receivers of the services' signals: attribute
    changes with old and new values, tags, consents, identification, merges, notes. ``profile`` is
    null only for ``profile.deleted``, the tombstone of an erased profile (no personal data in it).

    The table is partitioned by month on ``time`` (``profiles.partitions``). PostgreSQL wants the partition
    key in any unique index of a partitioned table, so the database's key is a unique index on ``(id, time)``;
    ``id`` still comes from one sequence and stays unique, and Django keeps treating it as the primary key.
    ``eventSalt``'s uniqueness lives in :class:`EventSalt` (a unique index here would have to contain ``time``).
    """

    profile = models.ForeignKey(
        "profiles.Profile", on_delete=models.CASCADE, null=True, blank=True, related_name="events"
    )
    action = models.CharField(max_length=64)
    label = models.CharField(max_length=256, blank=True, default="")
    time = models.DateTimeField()
    params = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=32, blank=True, default="")
    actor = models.CharField(max_length=256, blank=True, default="")
    request_id = models.CharField(
        max_length=128,
        blank=True,
        default=current_request_id,
        db_default="",
        help_text="The request (X-Request-ID) that caused this event.",
    )
    is_system = models.BooleanField(default=False)
    salt = models.CharField(max_length=128, null=True, blank=True, help_text="eventSalt: a retried event counts once.")
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        ordering = ["-time", "-id"]
        indexes = [
            # The timeline: one profile's events newest first, cursor-paged on (time, id).
            models.Index(fields=["profile", "-time", "-id"], name="event_profile_time_idx"),
            # Aggregates and last activity read custom events only: a smaller partial index.
            models.Index(fields=["profile", "action", "-time"], condition=Q(is_system=False), name="event_custom_idx"),
            # "This action over a time window" across profiles (segments, reports).
            models.Index(fields=["action", "time"], name="event_action_time_idx"),
            # Events arrive roughly in time order: a tiny BRIN index serves time-range scans of the whole table.
            BrinIndex(fields=["time"], name="event_time_brin"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(profile__isnull=False) | Q(action="profile.deleted"),
                name="event_profile_required",
                violation_error_message="Only a profile.deleted tombstone may have no profile.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} @ {self.time:%Y-%m-%d %H:%M}"


class EventSalt(models.Model):
    """An ``eventSalt`` already recorded: one row per salted event, so a retried event counts once.

    A trigger on the events table writes this row for every event inserted with a salt, whichever way it is
    inserted (the ORM, ``events_insert``, ``COPY``); a second event with the same salt fails on this primary
    key. The row stays when its event is deleted or its partition detached: the retry still counts once.
    """

    salt = models.CharField(max_length=128, primary_key=True)
    event_id = models.BigIntegerField(help_text="The event that recorded this salt.")
    time = models.DateTimeField(help_text="Its time (which names the partition it is in).")
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        verbose_name = "event salt"

    def __str__(self) -> str:
        return self.salt
