"""Imports: a file import (run as a crm ``Job``), its staged rows and report lines, saved mappings, and the
incoming integrations with the JWT ids they have seen."""

from django.core.validators import RegexValidator
from django.db import models

from crm.crypto import EncryptedTextField
from crm.models import Job

IMPORT_JOB_KIND = "imports.file"


class Format(models.TextChoices):
    CSV = "csv", "CSV"
    JSON = "json", "JSON array"
    JSONL = "jsonl", "JSON lines"
    XML = "xml", "XML"
    XLSX = "xlsx", "XLSX workbook"


class SavedMapping(models.Model):
    """A mapping (columns → targets, transformations, constants) kept by name to use again."""

    name = models.CharField(max_length=128, unique=True)
    format = models.CharField(max_length=8, choices=Format.choices, blank=True, default="")
    mapping = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ImportJob(models.Model):
    """A file import. Status, counts and attempts are its ``Job``'s; this holds the file, how to read it, and
    the two checkpoints (records staged, rows written) a run again resumes from."""

    class Phase(models.TextChoices):
        STAGING = "staging", "Reading the file"
        WRITING = "writing", "Writing profiles"
        DONE = "done", "Done"

    job = models.OneToOneField(Job, primary_key=True, on_delete=models.CASCADE, related_name="import_job")
    file = models.FileField(upload_to="imports/%Y/%m/%d/", max_length=500)
    original_name = models.CharField(max_length=255, blank=True, default="")
    size = models.BigIntegerField(default=0)
    format = models.CharField(max_length=8, choices=Format.choices)
    encoding = models.CharField(max_length=40, blank=True, default="", help_text="Empty: detected.")
    delimiter = models.CharField(max_length=1, blank=True, default="", help_text="Empty: detected (CSV).")
    mapping = models.JSONField()
    dry_run = models.BooleanField(default=False)
    phase = models.CharField(max_length=8, choices=Phase.choices, default=Phase.STAGING)
    records_read = models.PositiveIntegerField(default=0, help_text="Records of the file (first pass checkpoint).")
    bytes_read = models.BigIntegerField(default=0)
    staged = models.PositiveIntegerField(default=0, help_text="Distinct profiles in the file (by their last line).")
    records_written = models.PositiveIntegerField(
        default=0, help_text="Records handled by the writing pass (applied, failed or superseded): its checkpoint."
    )

    class Meta:
        verbose_name = "import"

    def __str__(self) -> str:
        return f"{self.original_name or self.file.name} ({self.job.status})"


class StagedRow(models.Model):
    """The line that wins for one person of an import (keyed by the strongest identifier): the first pass over
    the file keeps the last line of each key; the writing pass writes that line and reports the others as
    superseded."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    key = models.TextField()
    line = models.PositiveIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "key"], name="stagedrow_job_key_unique")]

    def __str__(self) -> str:
        return f"{self.key} (line {self.line})"


class Issue(models.Model):
    """A line of an import's report: an error (the line was not applied) or a warning (applied in part, or
    superseded by a later line)."""

    class Kind(models.TextChoices):
        ERROR = "error"
        WARNING = "warning"

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="issues")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    line = models.PositiveIntegerField()
    code = models.CharField(max_length=64)
    field = models.CharField(max_length=256, blank=True, default="")
    message = models.TextField()
    original = models.TextField(blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["job", "kind", "line"], name="issue_job_kind_line_idx")]

    def __str__(self) -> str:
        return f"line {self.line}: {self.code}"


slug_validator = RegexValidator(r"^[a-z0-9][a-z0-9-]{0,62}$", "Lower-case letters, digits and hyphens.")


class Integration(models.Model):
    """A third party that posts its own JSON to ``/integrations/incoming/<slug>``, signed with a JWT (HS256)
    under this secret (stored encrypted, shown once), mapped by ``mapping``."""

    slug = models.SlugField(max_length=63, unique=True, validators=[slug_validator])
    name = models.CharField(max_length=128, blank=True, default="")
    secret = EncryptedTextField(editable=False)
    mapping = models.JSONField(help_text="The same mapping as a file import's; column names are dotted paths.")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class SeenToken(models.Model):
    """A JWT id an integration used, kept until the token expires so a replay is refused."""

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="+")
    jti = models.CharField(max_length=255)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["integration", "jti"], name="seentoken_integration_jti")]

    def __str__(self) -> str:
        return self.jti
