"""The imports' API: ``POST /v4/imports/detect`` (what a file is and the mapping proposed for it),
``POST /v4/imports`` (an upload, queued), ``GET /v4/imports/{id}`` (status, counts, progress),
``GET /v4/imports/{id}/errors.csv`` (the report) in Synerise's shape and scopes, and
``POST /integrations/incoming/{slug}`` (a third party's JSON under a JWT) with RFC 7807 errors."""

from __future__ import annotations

import json

from django.conf import settings
from django.db.models import Count
from django.http import StreamingHttpResponse
from django.urls import path, reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import renderers, serializers
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from api.base import ApiView, RequestTooLarge
from api.jobs import JobJson, job_document
from api.parsers import bad_text
from api.problems import problem_responses, render_problem
from api.v4 import API_VERSION, ERRORS, PlatformView
from crm.errors import ValidationFailed
from imports.integrations import integration_receive
from imports.models import Format, ImportJob, Issue, SavedMapping
from imports.presets import PRESET_NAMES
from imports.services import (
    COUNT_KEYS,
    import_detect,
    import_get,
    import_progress,
    import_report_csv,
    import_submit,
)

SOURCE = "api"

ImportJson = inline_serializer(
    "ImportJob",
    {
        "jobId": serializers.UUIDField(),
        "status": serializers.ChoiceField(choices=["queued", "running", "done", "failed"]),
        "phase": serializers.ChoiceField(choices=ImportJob.Phase.values),
        "dryRun": serializers.BooleanField(),
        "file": inline_serializer(
            "ImportFile",
            {
                "name": serializers.CharField(),
                "size": serializers.IntegerField(),
                "format": serializers.ChoiceField(choices=Format.values),
                "encoding": serializers.CharField(),
                "delimiter": serializers.CharField(),
            },
        ),
        "lines": serializers.IntegerField(help_text="Records read so far (lines of CSV and JSONL)."),
        "counts": serializers.DictField(
            child=serializers.IntegerField(),
            help_text="created, updated, merged, unchanged, failed, superseded (earlier lines of the same "
            "profile), warnings. A dry run's counts say what would happen.",
        ),
        "progress": inline_serializer(
            "ImportProgress",
            {
                "percent": serializers.FloatField(),
                "rowsPerSecond": serializers.FloatField(),
                "elapsedSeconds": serializers.FloatField(),
                "phase": serializers.CharField(),
            },
        ),
        "errorCount": serializers.IntegerField(),
        "warningCount": serializers.IntegerField(),
        "reportUrl": serializers.CharField(help_text="Every failed line and every warning, as CSV."),
        "message": serializers.CharField(help_text="Why the job as a whole failed (a run again resumes it)."),
        "createdAt": serializers.DateTimeField(),
        "startedAt": serializers.DateTimeField(allow_null=True),
        "finishedAt": serializers.DateTimeField(allow_null=True),
    },
)

ImportUpload = inline_serializer(
    "ImportUpload",
    {
        "file": serializers.FileField(help_text="The CSV, JSON array, JSONL, XML or XLSX file."),
        "mapping": serializers.CharField(
            required=False,
            help_text='The mapping as JSON text, e.g. {"columns": {"E-mail": {"to": "email"}}} (or mappingName).',
        ),
        "mappingName": serializers.CharField(required=False, help_text="The name of a mapping saved in the admin."),
        "format": serializers.ChoiceField(choices=Format.values, required=False, help_text="Default: detected."),
        "encoding": serializers.CharField(required=False, help_text="CSV: default detected."),
        "delimiter": serializers.CharField(required=False, help_text="CSV: default detected."),
        "dryRun": serializers.BooleanField(required=False, help_text="Validate and resolve, write nothing."),
    },
)


def _iso(value):
    return value.isoformat().replace("+00:00", "Z") if value else None


def import_document(imp: ImportJob) -> dict:
    job = imp.job
    issue_counts = dict.fromkeys(Issue.Kind.values, 0)
    issue_counts.update(Issue.objects.filter(job=imp).values_list("kind").annotate(n=Count("id")).order_by())
    return {
        "jobId": str(imp.pk),
        "status": job.status,
        "phase": imp.phase,
        "dryRun": imp.dry_run,
        "file": {
            "name": imp.original_name,
            "size": imp.size,
            "format": imp.format,
            "encoding": imp.encoding,
            "delimiter": imp.delimiter,
        },
        "lines": imp.records_read,
        "counts": {key: (job.counts or {}).get(key, 0) for key in COUNT_KEYS},
        "progress": import_progress(imp=imp),
        "errorCount": issue_counts["error"],
        "warningCount": issue_counts["warning"],
        "reportUrl": reverse("imports-report", kwargs={"job_id": imp.pk}),
        "message": job.message,
        "createdAt": _iso(job.created_at),
        "startedAt": _iso(job.started_at),
        "finishedAt": _iso(job.finished_at),
    }


class CsvRenderer(renderers.BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data if isinstance(data, bytes | str) else json.dumps(data)


class UploadView(PlatformView):
    """A multipart upload of a file to import (at most IMPORT_MAX_UPLOAD_BYTES)."""

    parser_classes = [MultiPartParser]

    def max_body_bytes(self) -> int:
        return settings.IMPORT_MAX_UPLOAD_BYTES

    def initial(self, request, *args, **kwargs):
        # An Idempotency-Key makes the body be read into memory to fingerprint it: only for small uploads.
        length = request.META.get("CONTENT_LENGTH") or "0"
        if (
            request.headers.get("Idempotency-Key") is not None
            and length.isdigit()
            and int(length) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        ):
            raise RequestTooLarge(
                f"Idempotency-Key is accepted with uploads up to {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes; "
                "send larger files without it."
            )
        super().initial(request, *args, **kwargs)


class ImportsView(UploadView):
    @extend_schema(
        operation_id="imports_create",
        tags=["Imports"],
        summary="Import a file of profiles (queued; 202 with the job)",
        description="A multipart upload: `file` and `mapping` (JSON text) or `mappingName`. The file streams to "
        "the configured storage (at most IMPORT_MAX_UPLOAD_BYTES). The mapping is checked before anything is "
        "queued: an unknown target, a transformation that cannot apply or no identifier is a 400 naming it.",
        parameters=[API_VERSION],
        request={"multipart/form-data": ImportUpload},
        responses={202: OpenApiResponse(ImportJson, description="Queued; Location names the job"), **ERRORS},
    )
    def post(self, request):
        upload = request.FILES.get("file")
        if upload is None:
            raise ValidationFailed("Send the file to import as the multipart field 'file'.", field="file")
        data = request.data
        for name in ("mapping", "mappingName", "format", "encoding", "delimiter", "dryRun"):
            value = data.get(name)
            if isinstance(value, str) and (reason := bad_text(value)):
                raise ValidationFailed(f"{name} {reason}.", field=name, code="field.invalid_text")
        mapping = _mapping_from(data)
        fmt = (data.get("format") or "").strip().lower()
        if fmt and fmt not in Format.values:
            raise ValidationFailed(f"format must be one of {', '.join(Format.values)}.", field="format")
        dry_run = (data.get("dryRun") or "false").strip().lower()
        if dry_run not in ("true", "false", "1", "0"):
            raise ValidationFailed("dryRun must be true or false.", field="dryRun")
        imp = import_submit(
            file=upload,
            name=upload.name or "upload",
            mapping=mapping,
            fmt=fmt,
            encoding=(data.get("encoding") or "").strip(),
            delimiter=data.get("delimiter") or "",
            dry_run=dry_run in ("true", "1"),
            source=SOURCE,
            actor=self.actor,
        )
        response = Response(import_document(imp), status=202)
        response["Location"] = reverse("imports-job", kwargs={"job_id": imp.pk})
        return response


DetectUpload = inline_serializer(
    "ImportDetectUpload",
    {
        "file": serializers.FileField(help_text="The CSV, JSON array, JSONL, XML or XLSX file."),
        "format": serializers.ChoiceField(choices=Format.values, required=False, help_text="Default: detected."),
        "encoding": serializers.CharField(required=False, help_text="CSV: default detected."),
        "delimiter": serializers.CharField(required=False, help_text="CSV: default detected."),
        "sheet": serializers.CharField(required=False, help_text="XLSX: the worksheet to read (default: the first)."),
        "record": serializers.CharField(required=False, help_text="XML (required): the element holding one profile."),
    },
)

DetectJson = inline_serializer(
    "ImportDetection",
    {
        "format": serializers.ChoiceField(choices=Format.values),
        "encoding": serializers.CharField(allow_null=True, help_text="CSV: as detected or given; XLSX: null."),
        "delimiter": serializers.CharField(allow_null=True, help_text="CSV only; null for the other formats."),
        "sheet": serializers.CharField(allow_null=True, help_text="XLSX: the sheet asked for (null: the first)."),
        "header": serializers.ListField(child=serializers.CharField(), help_text="The columns (JSON: dotted paths)."),
        "rows": serializers.ListField(
            child=serializers.DictField(), help_text="The first five records, column → value as read."
        ),
        "preset": serializers.ChoiceField(
            choices=[*PRESET_NAMES],
            allow_null=True,
            help_text="The export the header was recognised as, null when none.",
        ),
        "presetLabel": serializers.CharField(allow_null=True),
        "mapping": serializers.DictField(
            help_text="The proposed mapping: POST /v4/imports takes it as it is (the mapping field, as JSON text)."
        ),
    },
)


class ImportDetectView(UploadView):
    @extend_schema(
        operation_id="imports_detect",
        tags=["Imports"],
        summary="Detect a file: format, encoding, delimiter, header, first rows, the export it is, a mapping",
        description="A multipart upload of `file`, read and not kept. The answer names the format, the encoding "
        "and delimiter (CSV), the header and the first rows, the preset when the header is a known export "
        "(Mailchimp, HubSpot, Klaviyo, Brevo, Shopify customers, Salesforce contacts, this platform's CSV export) "
        "and the mapping proposed for it, which `POST /v4/imports` takes as it is.",
        parameters=[API_VERSION],
        request={"multipart/form-data": DetectUpload},
        responses={200: DetectJson, **ERRORS},
    )
    def post(self, request):
        upload = request.FILES.get("file")
        if upload is None:
            raise ValidationFailed("Send the file to detect as the multipart field 'file'.", field="file")
        data = request.data
        for name in ("format", "encoding", "delimiter", "sheet", "record"):
            value = data.get(name)
            if isinstance(value, str) and (reason := bad_text(value)):
                raise ValidationFailed(f"{name} {reason}.", field=name, code="field.invalid_text")
        fmt = (data.get("format") or "").strip().lower()
        if fmt and fmt not in Format.values:
            raise ValidationFailed(f"format must be one of {', '.join(Format.values)}.", field="format")
        detected = import_detect(
            file=upload,
            name=upload.name or "upload",
            fmt=fmt,
            encoding=(data.get("encoding") or "").strip(),
            delimiter=data.get("delimiter") or "",
            sheet=(data.get("sheet") or "").strip(),
            record=(data.get("record") or "").strip(),
        )
        return Response(detected)


def _mapping_from(data) -> dict:
    raw, name = data.get("mapping"), data.get("mappingName")
    if raw:
        try:
            mapping = json.loads(raw)
        except ValueError as exc:
            raise ValidationFailed(f"mapping is not valid JSON: {exc}.", field="mapping") from None
        if not isinstance(mapping, dict):
            raise ValidationFailed("mapping must be a JSON object.", field="mapping")
        return mapping
    if name:
        saved = SavedMapping.objects.filter(name=name).first()
        if saved is None:
            raise ValidationFailed(f"No saved mapping named {name!r}.", field="mappingName")
        return saved.mapping
    raise ValidationFailed("Send a mapping (JSON text) or the mappingName of a saved one.", field="mapping")


class ImportJobView(PlatformView):
    @extend_schema(
        operation_id="imports_status",
        tags=["Imports"],
        summary="An import's status, counts and progress",
        parameters=[API_VERSION],
        responses={200: ImportJson, **ERRORS},
    )
    def get(self, request, job_id):
        return Response(import_document(import_get(job_id=job_id)))


class ImportReportView(PlatformView):
    renderer_classes = [renderers.JSONRenderer, CsvRenderer]

    @extend_schema(
        operation_id="imports_report",
        tags=["Imports"],
        summary="An import's report as CSV: every failed line, then every warning (no cap)",
        description="Columns: line, kind (error or warning), code, field, message, original (the line's own text).",
        parameters=[
            API_VERSION,
            OpenApiParameter("kind", str, enum=Issue.Kind.values, description="Only errors or only warnings."),
        ],
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR), **ERRORS},
    )
    def get(self, request, job_id):
        imp = import_get(job_id=job_id)
        kind = request.query_params.get("kind") or None
        if kind is not None and kind not in Issue.Kind.values:
            raise ValidationFailed("kind must be error or warning.", field="kind")
        response = StreamingHttpResponse(import_report_csv(imp=imp, kind=kind), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="import-{imp.pk}-report.csv"'
        response["Cache-Control"] = "no-store"
        return response


# --- incoming integrations --------------------------------------------------------------------------


class IncomingIntegrationView(ApiView):
    """A third party's own JSON, signed with a JWT under the integration's secret (not an API key)."""

    error_renderer = staticmethod(render_problem)
    authentication_classes: list = []
    permission_classes = [AllowAny]

    def check_throttles(self, request):
        return None  # the JWT's single use and short life are its limits

    @extend_schema(
        operation_id="integrations_incoming",
        tags=["Integrations"],
        summary="Receive a third party's JSON (one object or a list) for an incoming integration",
        description="`Authorization: Bearer <JWT>`: HS256 under the integration's secret, `exp` required and at "
        "most INTEGRATION_JWT_MAX_AGE_SECONDS ahead, `iat` not in the future, a `jti` used once. The records are "
        "mapped by the integration's mapping (dotted paths) and queued as a batch job: all of them, or none "
        "when one fails (400 naming it).",
        auth=[],
        request={"application/json": OpenApiTypes.ANY},
        parameters=[
            OpenApiParameter("Authorization", str, OpenApiParameter.HEADER, description="Bearer <JWT>", required=True)
        ],
        responses={
            202: OpenApiResponse(JobJson, description="Queued; Location names the batch job"),
            **problem_responses(400, 401, 404, 411, 413, 503),
        },
    )
    def post(self, request, slug):
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        job = integration_receive(
            slug=slug, token=token.strip() if scheme.lower() == "bearer" else None, body=request.data
        )
        response = Response(job_document(job), status=202)
        response["Location"] = f"/v4/clients/batch/{job.pk}"
        return response


urlpatterns = [
    path("v4/imports", ImportsView.as_view(), name="imports"),
    path("v4/imports/detect", ImportDetectView.as_view(), name="imports-detect"),
    path("v4/imports/<uuid:job_id>", ImportJobView.as_view(), name="imports-job"),
    path("v4/imports/<uuid:job_id>/errors.csv", ImportReportView.as_view(), name="imports-report"),
    path("integrations/incoming/<slug:slug>", IncomingIntegrationView.as_view(), name="integrations-incoming"),
]
