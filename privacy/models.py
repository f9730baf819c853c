"""What erasure leaves behind: who asked and when (``Erasure``), and the ids that never resolve again (``Tombstone``).

Neither holds personal data: clientIds are plain numbers, uuids only as keyed digests (``privacy.digests``).
"""

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone

from crm.request_id import current_request_id


class Erasure(models.Model):
    """One erased profile: its clientId and merged-in ids, who asked, when, and the rows each erasure step touched.

    ``replayed_at`` is set when ``erasure_replay`` applied it again to a database restored from a backup.
    """

    client_id = models.BigIntegerField("clientId", unique=True)
    merged_client_ids = ArrayField(models.BigIntegerField(), default=list, blank=True)
    source = models.CharField(max_length=32)
    actor = models.CharField(max_length=256, blank=True, default="", help_text="Who asked (api-key:…, user:…).")
    request_id = models.CharField(max_length=128, blank=True, default=current_request_id, db_default="")
    requested_at = models.DateTimeField(default=timezone.now)
    counts = models.JSONField(default=dict, blank=True, help_text="Rows each erasure step removed or anonymised.")
    replayed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]

    def __str__(self) -> str:
        return f"erasure of clientId {self.client_id}"


class TombstoneKind(models.TextChoices):
    CLIENT_ID = "clientId"
    UUID = "uuid"


class Tombstone(models.Model):
    """An id that names an erased profile and must never resolve to anyone again: a clientId (the number as text)
    or a uuid (its keyed digest). Looked up only when a lookup found no profile, so reads pay nothing for it."""

    kind = models.CharField(max_length=16, choices=TombstoneKind.choices)
    value = models.CharField(max_length=64)
    erasure = models.ForeignKey(Erasure, on_delete=models.CASCADE, related_name="tombstones")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "value"],
                name="tombstone_kind_value_unique",
                violation_error_message="This id is already tombstoned.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"
