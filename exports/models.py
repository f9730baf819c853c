"""Scheduled exports: which profiles, in which format, when, and where to (an HTTP endpoint or an SFTP server),
with a log of every run."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from crm.crypto import EncryptedTextField


class ExportFormat(models.TextChoices):
    CSV = "csv", "CSV"
    JSONL = "jsonl", "JSON Lines"


class Schedule(models.TextChoices):
    HOURLY = "hourly", "every hour"
    DAILY = "daily", "daily at a time"


class TargetKind(models.TextChoices):
    HTTP = "http", "HTTP endpoint (POST)"
    SFTP = "sftp", "SFTP server"


class ScheduledExport(models.Model):
    """Profiles (the list's filters, or a segment) sent as a file on a schedule to an HTTP endpoint or an SFTP
    server; incremental ones send only profiles changed since the last successful run."""

    name = models.CharField(max_length=128, unique=True)
    is_active = models.BooleanField(default=True, help_text="Inactive exports do not run on their schedule.")
    filters = models.CharField(
        max_length=2000,
        blank=True,
        help_text="The list's filters as a query string, e.g. tags=vip&city=Warsaw&attribute=points:gt:100 "
        "(empty: every profile).",
    )
    segment_id = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="A segment's id: only its profiles (with the filters, if any)."
    )
    format = models.CharField(max_length=8, choices=ExportFormat.choices, default=ExportFormat.CSV)
    bom = models.BooleanField("UTF-8 byte order mark", default=False, help_text="CSV only: for spreadsheets.")
    incremental = models.BooleanField(
        default=False, help_text="Send only the profiles changed since the last successful run (the first sends all)."
    )
    schedule = models.CharField(max_length=8, choices=Schedule.choices, default=Schedule.DAILY)
    daily_at = models.TimeField(
        null=True, blank=True, help_text="For daily exports: the time of day (in the server's TIME_ZONE)."
    )

    target = models.CharField(max_length=8, choices=TargetKind.choices, default=TargetKind.HTTP)
    http_url = models.URLField("URL", max_length=1024, blank=True)
    http_secret = EncryptedTextField(
        "signing secret",
        blank=True,
        help_text="Standard Webhooks secret (whsec_…) the receiver checks the signature with; made when empty.",
    )
    sftp_host = models.CharField("host", max_length=255, blank=True)
    sftp_port = models.PositiveIntegerField(
        "port", default=22, validators=[MinValueValidator(1), MaxValueValidator(65535)]
    )
    sftp_user = models.CharField("user", max_length=255, blank=True)
    sftp_password = EncryptedTextField("password", blank=True)
    sftp_private_key = EncryptedTextField("private key", blank=True, help_text="OpenSSH or PEM private key text.")
    sftp_host_key = models.TextField(
        "server's host key",
        blank=True,
        help_text="ssh-ed25519 AAAA… (as in known_hosts, without the host name). Empty: the key the server shows "
        "on the first successful run is kept, and later runs refuse any other.",
    )
    sftp_path = models.CharField(
        "remote path",
        max_length=512,
        blank=True,
        help_text="strftime codes take the run's start time (UTC), e.g. upload/profiles-%Y%m%d-%H%M.csv",
    )

    next_run_at = models.DateTimeField(null=True, blank=True, db_index=True)
    attempt = models.PositiveIntegerField(default=0, help_text="Failed attempts of the run now being retried.")
    last_success_started_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(schedule="daily") | Q(daily_at__isnull=False),
                name="scheduledexport_daily_has_time",
                violation_error_message="A daily export needs its time of day.",
            ),
            models.CheckConstraint(
                condition=~Q(target="http") | ~Q(http_url=""),
                name="scheduledexport_http_has_url",
                violation_error_message="An HTTP export needs its URL.",
            ),
            models.CheckConstraint(
                condition=~Q(target="sftp") | (~Q(sftp_host="") & ~Q(sftp_user="") & ~Q(sftp_path="")),
                name="scheduledexport_sftp_has_server",
                violation_error_message="An SFTP export needs a host, a user and a remote path.",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class RunOutcome(models.TextChoices):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped", "skipped (already running)"


class ExportRun(models.Model):
    """One run of a scheduled export: when, how many profiles and bytes, how long, and how it ended."""

    export = models.ForeignKey(ScheduledExport, on_delete=models.CASCADE, related_name="runs")
    trigger = models.CharField(max_length=16, help_text="schedule, manual or retry")
    actor = models.CharField(max_length=256, default="system", help_text="Who started it: user:<name> or system.")
    attempt = models.PositiveIntegerField(default=1)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    changed_since = models.DateTimeField(null=True, blank=True, help_text="Incremental runs: the change time read.")
    rows = models.PositiveBigIntegerField(default=0)
    bytes = models.PositiveBigIntegerField(default=0)
    outcome = models.CharField(max_length=16, choices=RunOutcome.choices, default=RunOutcome.RUNNING)
    destination = models.CharField(max_length=1024, blank=True, help_text="Where the file went.")
    error = models.TextField(blank=True)
    retry_at = models.DateTimeField(null=True, blank=True, help_text="When a failed run is tried again.")

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["export", "-started_at"], name="exportrun_export_started")]

    def __str__(self) -> str:
        return f"{self.export} at {self.started_at:%Y-%m-%d %H:%M}: {self.outcome}"

    @property
    def duration(self):
        return (self.finished_at - self.started_at) if self.finished_at else None
