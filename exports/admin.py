"""Scheduled exports in the admin: the form (secrets written, never shown back, except the signing secret the
receiver needs), the run log on the export's page, "Run now", and every run in a list of its own."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import ActionLocation
from django.db.models import OuterRef, Subquery
from django.forms.models import construct_instance
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from crm.actors import actor_of
from crm.admin import ServiceAdminMixin, ServiceModelForm
from exports.models import ExportRun, RunOutcome, ScheduledExport
from exports.services import scheduled_export_run_now, scheduled_export_save

SECRET_FIELDS = ("http_secret", "sftp_password", "sftp_private_key")
RUN_LOG_LENGTH = 20


class ScheduledExportForm(ServiceModelForm):
    http_secret = forms.CharField(
        label="signing secret",
        required=False,
        help_text="whsec_… (Standard Webhooks). Empty: keep the stored one, or have one made.",
    )
    sftp_password = forms.CharField(
        label="password", required=False, widget=forms.PasswordInput, help_text="Empty: keep the stored one."
    )
    sftp_private_key = forms.CharField(
        label="private key",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "autocomplete": "off"}),
        help_text="An unencrypted OpenSSH or PEM key (Ed25519, ECDSA or RSA); it is used instead of the password. "
        "Empty: keep the stored one.",
    )

    class Meta:
        model = ScheduledExport
        widgets = {
            "sftp_host_key": forms.Textarea(attrs={"rows": 2, "cols": 80}),
            "filters": forms.TextInput(attrs={"size": 80}),
        }
        fields = [
            "name", "is_active", "filters", "segment_id", "format", "bom", "incremental", "schedule", "daily_at",
            "target", "http_url", "http_secret", "sftp_host", "sftp_port", "sftp_user", "sftp_password",
            "sftp_private_key", "sftp_host_key", "sftp_path",
        ]  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in SECRET_FIELDS:
            self.initial[name] = ""  # stored secrets are never sent back to the browser

    def call_service(self):
        export = construct_instance(self, self.instance, self._meta.fields, self._meta.exclude)
        stored = ScheduledExport.objects.filter(pk=export.pk).first() if export.pk else None
        for name in SECRET_FIELDS:
            value = (self.cleaned_data.get(name) or "").strip()
            setattr(export, name, value or (getattr(stored, name) if stored else ""))
        if export.pk is None and self.request is not None and self.request.user.is_authenticated:
            export.created_by = self.request.user
        return scheduled_export_save(export=export, actor=self.actor)


def _when(value) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S") if value else "–"


def _duration(run: ExportRun) -> str:
    duration = run.duration
    return f"{duration.total_seconds():.1f} s" if duration is not None else "–"


@admin.register(ScheduledExport)
class ScheduledExportAdmin(ServiceAdminMixin, admin.ModelAdmin):
    form = ScheduledExportForm
    list_display = ["name", "target", "format", "schedule_display", "incremental", "is_active", "next_run_at",
                    "last_run"]  # fmt: skip
    list_filter = ["is_active", "target", "format", "schedule"]
    search_fields = ["name"]
    actions = ["run_now"]
    readonly_fields = ["signing_secret", "next_run_at", "retry_state", "last_success_started_at", "run_log"]
    fieldsets = [
        (None, {"fields": ["name", "is_active"]}),
        ("Which profiles", {"fields": ["filters", "segment_id", "incremental"]}),
        ("File", {"fields": ["format", "bom"]}),
        ("When", {"fields": ["schedule", "daily_at"]}),
        ("Where to", {"fields": ["target"]}),
        ("HTTP endpoint", {"fields": ["http_url", "http_secret", "signing_secret"]}),
        (
            "SFTP server",
            {
                "fields": [
                    "sftp_host",
                    "sftp_port",
                    "sftp_user",
                    "sftp_password",
                    "sftp_private_key",
                    "sftp_host_key",
                    "sftp_path",
                ]
            },
        ),
        ("Runs", {"fields": ["next_run_at", "retry_state", "last_success_started_at", "run_log"]}),
    ]

    def get_fieldsets(self, request, obj=None):
        if obj is None:  # nothing has run yet, and no secret exists
            return [
                (name, {"fields": [f for f in opts["fields"] if f not in self.readonly_fields]})
                for name, opts in self.fieldsets
                if name != "Runs"
            ]
        return self.fieldsets

    @admin.display(description="schedule")
    def schedule_display(self, obj):
        if obj.schedule == "daily" and obj.daily_at:
            return f"daily at {obj.daily_at:%H:%M}"
        return obj.get_schedule_display()

    def get_queryset(self, request):
        last = ExportRun.objects.filter(export=OuterRef("pk")).order_by("-started_at", "-id")
        return (
            super()
            .get_queryset(request)
            .annotate(
                last_outcome=Subquery(last.values("outcome")[:1]), last_started=Subquery(last.values("started_at")[:1])
            )
        )

    # Exporting profiles is a permission of its own (``profiles.export_profile``, as the list's CSV export): a
    # scheduled export is one, so writing or running one needs it besides the model's own permission.
    def _may_export(self, request) -> bool:
        return request.user.has_perm("profiles.export_profile")

    def has_add_permission(self, request):
        return super().has_add_permission(request) and self._may_export(request)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self._may_export(request)

    @admin.display(description="last run", ordering="last_started")
    def last_run(self, obj):
        if getattr(obj, "last_started", None) is None:
            return "never"
        return format_html(
            '<span class="export-outcome export-{}">{}</span> {}',
            obj.last_outcome,
            RunOutcome(obj.last_outcome).label,
            _when(obj.last_started),
        )

    @admin.display(description="secret in use")
    def signing_secret(self, obj):
        if obj.target != "http" or not obj.http_secret:
            return "–"
        return format_html("<code>{}</code> (give it to the receiver to check the signature)", obj.http_secret)

    @admin.display(description="retrying")
    def retry_state(self, obj):
        if not obj.attempt:
            return "no"
        from django.conf import settings

        return f"attempt {obj.attempt + 1} of {settings.EXPORT_MAX_ATTEMPTS} at {_when(obj.next_run_at)}"

    @admin.display(description="run log (latest first)")
    def run_log(self, obj):
        runs = list(obj.runs.order_by("-started_at", "-id")[:RUN_LOG_LENGTH])
        if not runs:
            return "No runs yet."
        rows = format_html_join(
            "",
            '<tr class="export-run"><td>{}</td><td>{}</td><td>{}</td><td class="export-outcome export-{}">{}</td>'
            "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    _when(run.started_at), f"{run.trigger} ({run.actor})", run.attempt, run.outcome,
                    run.get_outcome_display(),
                    f"{run.rows:,}", f"{run.bytes:,}", _duration(run), run.destination or "–",
                    run.error + (f" (retry at {_when(run.retry_at)})" if run.retry_at else ""),
                )
                for run in runs
            ),
        )  # fmt: skip
        return format_html(
            '<table id="export-run-log"><thead><tr><th>started</th><th>trigger</th><th>attempt</th><th>outcome</th>'
            "<th>rows</th><th>bytes</th><th>duration</th><th>destination</th><th>error</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            rows,
        )

    @admin.action(
        description="Run now",
        description_plural="Run the selected exports now",
        permissions=["change"],
        location=[ActionLocation.CHANGE_LIST, ActionLocation.CHANGE_FORM],
    )
    def run_now(self, request, queryset):
        exports = list(queryset)
        for export in exports:
            scheduled_export_run_now(export=export, actor=actor_of(request.user))
        names = ", ".join(e.name for e in exports)
        self.message_user(request, f"Queued a run of {names}; its log shows how it went.", messages.SUCCESS)


@admin.register(ExportRun)
class ExportRunAdmin(admin.ModelAdmin):
    """Every run of every scheduled export (read only)."""

    list_display = ["export", "started_at", "trigger", "actor", "attempt", "outcome", "rows", "bytes",
                    "duration_display", "destination", "error"]  # fmt: skip
    list_filter = ["outcome", "trigger", "export"]
    list_select_related = ["export"]
    date_hierarchy = "started_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="duration")
    def duration_display(self, obj):
        return _duration(obj)


__all__ = ["ExportRunAdmin", "RunOutcome", "ScheduledExportAdmin"]
