"""Segments (saved condition trees with their live membership) and admin-defined expressions."""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Lower


class Segment(models.Model):
    """A saved audience: a condition tree in the one filter language, and how its last evaluation went.

    Membership is kept as ``SegmentMembership`` rows, refreshed in the background for the profiles a write
    touched, on a schedule for time-relative conditions, and after RFM scoring for commerce conditions.
    Counts evaluate the tree itself, so they are exact at once.
    """

    name = models.CharField(max_length=128)
    description = models.TextField(blank=True, default="")
    tree = models.JSONField(help_text="The condition tree (canonical JSON: tags by id).")
    time_relative = models.BooleanField(default=False, editable=False, help_text="Uses inLastDays or withinDays.")
    uses_commerce = models.BooleanField(default=False, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.CharField(max_length=256, blank=True, default="")
    updated_by = models.CharField(max_length=256, blank=True, default="")
    last_count = models.BigIntegerField(null=True, blank=True)
    last_evaluated_at = models.DateTimeField(null=True, blank=True)
    evaluation_ms = models.FloatField(null=True, blank=True, help_text="How long the last evaluation took.")
    members_refreshed_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                Lower("name"), name="segment_name_ci_unique", violation_error_message="A segment with this name exists."
            )
        ]

    def __str__(self) -> str:
        return self.name


class SegmentMembership(models.Model):
    """One profile in one segment, since when. The pair is the key; ``profile`` first serves the card."""

    pk = models.CompositePrimaryKey("profile_id", "segment_id")
    profile = models.ForeignKey("profiles.Profile", on_delete=models.CASCADE, related_name="segment_memberships")
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="memberships")
    since = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["segment", "profile"], name="segmentmember_segment_idx")]

    def __str__(self) -> str:
        return f"{self.profile_id} in {self.segment_id}"


class TouchedProfile(models.Model):
    """A profile a write changed since the last membership refresh: written in the write's own transaction
    (one INSERT per write, whatever its size), taken and deleted by the refresh task."""

    profile_id = models.BigIntegerField(primary_key=True)
    touched_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return str(self.profile_id)


class ExpressionType(models.TextChoices):
    NUMBER = "number"
    TEXT = "text"
    BOOLEAN = "boolean"


class ExpressionFormat(models.TextChoices):
    PLAIN = "plain", "as is"
    INTEGER = "integer", "whole number"
    DECIMAL = "decimal", "two decimals"
    CURRENCY = "currency", "money (profile's currency)"
    PERCENT = "percent", "percentage"
    YES_NO = "yesno", "yes / no"


class Expression(models.Model):
    """A figure computed per profile from its attributes, aggregates and commerce figures, shown on the card.

    Evaluated with simpleeval (a restricted evaluator: no attribute access, no imports, no ``eval``).
    """

    name = models.CharField(max_length=64, unique=True, help_text="The key in the profile's expressions object.")
    label = models.CharField(max_length=128, blank=True, default="")
    expression = models.TextField(help_text='e.g. totalSpent / max(totalOrders, 1) or events("page.visit", 30) > 5')
    type = models.CharField(max_length=16, choices=ExpressionType.choices, default=ExpressionType.NUMBER)
    format = models.CharField(max_length=16, choices=ExpressionFormat.choices, default=ExpressionFormat.PLAIN)
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.label or self.name
