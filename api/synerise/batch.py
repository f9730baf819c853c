"""``POST /v4/clients/batch`` (queued, 202 with a job) and ``GET /v4/clients/batch/{jobId}`` (its status)."""

from django.conf import settings
from django.db import transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.response import Response

from api.base import RequestTooLarge
from api.jobs import JobJson, job_document
from api.parsers import text_check
from api.serializers import first_error
from api.synerise.requests import ProfileWriteSerializer, profile_input
from api.synerise.views import SOURCE
from api.v4 import API_VERSION, ERRORS, PlatformView
from crm.errors import DomainError, NotFound, ValidationFailed
from crm.models import Job
from profiles.services.batch import BATCH_JOB_KIND, profiles_batch_submit


class BatchView(PlatformView):
    per_item_text_check = True

    def max_body_bytes(self) -> int:
        return settings.BATCH_MAX_BYTES

    @extend_schema(
        operation_id="clients_batch",
        tags=["Profiles"],
        summary="Create or update many profiles (queued; at most 1,000 items and 1 MB)",
        parameters=[API_VERSION],
        request=ProfileWriteSerializer(many=True),
        responses={202: OpenApiResponse(JobJson, description="Queued; Location names the job"), **ERRORS},
    )
    def post(self, request):
        body = request.data
        if not isinstance(body, list):
            raise ValidationFailed("The body must be a JSON array of profiles.", field="body")
        if not body:
            raise ValidationFailed("The batch is empty.", field="body")
        if len(body) > settings.BATCH_MAX_ITEMS:
            raise RequestTooLarge(f"A batch may hold at most {settings.BATCH_MAX_ITEMS} profiles; got {len(body)}.")
        items = []
        for index, raw in enumerate(body):
            try:
                text_check(raw, f"[{index}]")
                items.append(profile_input(raw))
            except DomainError as error:
                items.append(error)
            except exceptions.ValidationError as error:
                field, message, code = first_error(error.detail, error.get_codes(), f"[{index}]")
                items.append(ValidationFailed(message, field=field, code=code))
        with transaction.atomic():
            job = profiles_batch_submit(items=items, source=SOURCE, actor=self.actor)
        response = Response(job_document(job), status=202)
        response["Location"] = f"/v4/clients/batch/{job.pk}"
        return response


class BatchJobView(PlatformView):
    @extend_schema(
        operation_id="clients_batch_status",
        tags=["Profiles"],
        summary="A batch job's status, counts, per-item errors and warnings",
        parameters=[API_VERSION],
        responses={200: JobJson, **ERRORS},
    )
    def get(self, request, job_id):
        job = Job.objects.filter(pk=job_id, kind=BATCH_JOB_KIND).first()
        if job is None:
            raise NotFound(f"No batch job {job_id}.", field="jobId")
        return Response(job_document(job))
