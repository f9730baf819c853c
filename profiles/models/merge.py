from django.db import models


class MergeRecord(models.Model):
    """One profile merged into another: who, when, and a snapshot of the merged-in profile for undo.

    Client ids are plain numbers, not foreign keys: the survivor may itself be merged later, and
    the record must outlive both rows.
    """

    survivor_client_id = models.BigIntegerField(db_index=True)
    merged_client_id = models.BigIntegerField(db_index=True)
    snapshot = models.JSONField()
    forced = models.BooleanField(default=False)
    # Why: the identifiers that linked the profiles ({"links": [{kind, value, clientId}]}) and the write
    # that caused it ({"write": {source, actor, requestId, forced}}).
    reason = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=32)
    actor = models.CharField(max_length=256, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    undone_at = models.DateTimeField(null=True, blank=True)
    undo_notes = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["merged_client_id"],
                condition=models.Q(undone_at__isnull=True),
                name="mergerecord_one_live_merge_per_client",
                violation_error_message="This profile is already merged.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.merged_client_id} → {self.survivor_client_id}"


class ClientIdAlias(models.Model):
    """An old clientId that keeps resolving to the profile it was merged into."""

    old_client_id = models.BigIntegerField(primary_key=True)
    profile = models.ForeignKey("profiles.Profile", on_delete=models.CASCADE, related_name="aliases")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "clientId alias"
        verbose_name_plural = "clientId aliases"

    def __str__(self) -> str:
        return f"{self.old_client_id} → {self.profile_id}"
