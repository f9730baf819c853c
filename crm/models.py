import hashlib
import hmac
import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models

from crm.ratelimit import validate_rate
from crm.request_id import current_request_id


class Scope(models.TextChoices):
    READ = "read"
    WRITE = "write"
    EXPORT = "export"  # whole lists of profiles at once (GET /v4/clients/export.csv|.jsonl)
    ADMIN = "admin"


def hash_secret(secret: str) -> str:
    # API keys carry 256 bits of randomness, so a fast keyed hash is enough (no password stretching
    # needed) and keeps authentication off the request's critical path.
    return hmac.new(b"crm-api-key", secret.encode(), hashlib.sha256).hexdigest()


class ApiKey(models.Model):
    """A credential for the API. Only a hash of the secret is stored; the secret is shown once."""

    PREFIX_LENGTH = 10

    name = models.CharField(max_length=128)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    scopes = ArrayField(models.CharField(max_length=16, choices=Scope.choices), default=list)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    rate_limit = models.CharField(
        max_length=32,
        blank=True,
        default="",
        validators=[validate_rate],
        help_text="Requests allowed, as N/unit (600/min, 10/s, 5000/hour); empty: the API_RATE_LIMIT setting.",
    )

    class Meta:
        verbose_name = "API key"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(scopes__contained_by=Scope.values),
                name="apikey_scopes_known",
                violation_error_message="Unknown scope.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @staticmethod
    def prefix_of(secret: str) -> str | None:
        parts = secret.split("_", 2)
        if len(parts) != 3 or parts[0] != "crm":
            return None
        return parts[1]

    def matches(self, secret: str) -> bool:
        return hmac.compare_digest(self.secret_hash, hash_secret(secret))

    def allows(self, scope: str) -> bool:
        return Scope.ADMIN in self.scopes or scope in self.scopes


class Job(models.Model):
    """A piece of background work (a profile batch, later imports) with its status and outcome.

    ``payload`` holds the work in the services' terms, so a job can be run again safely.
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    payload = models.JSONField(default=list)
    counts = models.JSONField(default=dict, blank=True)
    errors = models.JSONField(default=list, blank=True, help_text="Per failed item: index, code, message, field.")
    warnings = models.JSONField(
        default=list, blank=True, help_text="Per item applied in part: index, code, message, field."
    )
    message = models.TextField(blank=True, default="", help_text="Why the job as a whole failed.")
    source = models.CharField(max_length=32)
    actor = models.CharField(max_length=256, blank=True, default="")
    request_id = models.CharField(
        max_length=128,
        blank=True,
        default=current_request_id,
        db_default="",
        help_text="The request that submitted the job.",
    )
    attempts = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(
        default=0, help_text="Items handled (applied or failed), in order; a run again starts after them."
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.id} ({self.status})"


class IdempotencyRecord(models.Model):
    """The first answer to a POST sent with an ``Idempotency-Key``, replayed for repeats within 24 h."""

    key = models.CharField(max_length=255)
    scope = models.CharField(max_length=64, help_text="Who sent it: the API key's prefix.")
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.BinaryField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["scope", "key"],
                name="idempotency_scope_key_unique",
                violation_error_message="This Idempotency-Key was used already.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.scope}:{self.key}"


class RateLimitCounter(models.Model):
    """Requests counted in one fixed window of one bucket (an API key, or a client IP on login and consent pages)."""

    bucket = models.CharField(max_length=200)
    window_start = models.BigIntegerField(help_text="Unix time the window starts at.")
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["bucket", "window_start"], name="ratelimit_bucket_window")]
        indexes = [models.Index(fields=["window_start"], name="ratelimit_window_idx")]

    def __str__(self) -> str:
        return f"{self.bucket} @ {self.window_start}: {self.count}"


class WorkerHeartbeat(models.Model):
    """A background worker (database or Celery) saying it is alive; ``/health`` reports those that went silent."""

    worker_id = models.CharField(max_length=200, primary_key=True)
    kind = models.CharField(max_length=16, help_text="db or celery")
    hostname = models.CharField(max_length=255)
    pid = models.IntegerField()
    queues = ArrayField(models.CharField(max_length=64), default=list)
    started_at = models.DateTimeField()
    seen_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return self.worker_id


class RecurringPlan(models.Model):
    """The next planned run of a recurring task on a backend that cannot be asked what it holds (Celery).

    Starting workers and finished runs consult it under an advisory lock, so however many workers start,
    one chain of runs goes on per task.
    """

    task_path = models.CharField(max_length=255, primary_key=True)
    run_after = models.DateTimeField()
    enqueued_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.task_path} at {self.run_after:%Y-%m-%d %H:%M:%S}"


class SystemSample(models.Model):
    """Every registered gauge at one moment (``crm/system.py``): what the System page's charts draw.

    Written by a recurring task every ``SYSTEM_SAMPLE_SECONDS`` as one row, ``values`` mapping each series
    (``crm_task_queue_depth{queue="batches"}``) to its value; rows older than ``SYSTEM_SAMPLE_RETENTION_HOURS`` are
    deleted by the same task. Its view permission is the System page's: Admin staff have it.
    """

    taken_at = models.DateTimeField(db_index=True)
    values = models.JSONField(default=dict)

    class Meta:
        verbose_name = "system"
        verbose_name_plural = "system"

    def __str__(self) -> str:
        return f"sample at {self.taken_at:%Y-%m-%d %H:%M:%S}"
