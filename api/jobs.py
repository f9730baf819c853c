"""The document of a queued job (a batch of profile writes, an import): its status, counts and errors."""

from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

from crm.models import Job

JobJson = inline_serializer(
    "BatchJob",
    {
        "jobId": serializers.UUIDField(),
        "status": serializers.ChoiceField(choices=Job.Status.values),
        "items": serializers.IntegerField(),
        "processed": serializers.IntegerField(
            help_text="Items 0 … processed-1 were handled (applied or failed: see errors); the rest were not "
            "applied (a failed job run again finishes them)."
        ),
        "counts": serializers.DictField(child=serializers.IntegerField()),
        "errors": serializers.ListField(child=serializers.DictField()),
        "warnings": serializers.ListField(
            child=serializers.DictField(),
            help_text="Items applied in part: index, code, message, field (e.g. an older consent decision).",
        ),
        "message": serializers.CharField(),
        "createdAt": serializers.DateTimeField(),
        "startedAt": serializers.DateTimeField(allow_null=True),
        "finishedAt": serializers.DateTimeField(allow_null=True),
    },
)


def job_document(job: Job) -> dict:
    def iso(value):
        return value.isoformat().replace("+00:00", "Z") if value else None

    return {
        "jobId": str(job.pk),
        "status": job.status,
        "items": len(job.payload),
        # Items [0, processed) were handled (applied, or failed with an error below); the rest were not applied.
        "processed": job.processed,
        "counts": job.counts,
        "errors": job.errors,
        "warnings": job.warnings,
        "message": job.message,
        "createdAt": iso(job.created_at),
        "startedAt": iso(job.started_at),
        "finishedAt": iso(job.finished_at),
    }
