"""Erasures, read-only: which profile, its merged-in ids, who asked, when, and what each erasure step removed."""

from django.contrib import admin
from django.utils.html import format_html_join

from privacy.models import Erasure


@admin.register(Erasure)
class ErasureAdmin(admin.ModelAdmin):
    list_display = ("client_id", "merged", "actor", "source", "requested_at", "replayed_at")
    list_filter = ("source", "requested_at")
    date_hierarchy = "requested_at"
    ordering = ("-requested_at", "-id")
    fields = (
        "client_id",
        "merged_client_ids",
        "actor",
        "source",
        "request_id",
        "requested_at",
        "replayed_at",
        "rows",
    )
    readonly_fields = fields

    @admin.display(description="merged-in clientIds")
    def merged(self, obj: Erasure) -> str:
        return ", ".join(map(str, obj.merged_client_ids)) or "—"

    @admin.display(description="rows removed or anonymised, by step")
    def rows(self, obj: Erasure):
        return format_html_join("", "<div>{}: {}</div>", sorted((obj.counts or {}).items())) or "—"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
