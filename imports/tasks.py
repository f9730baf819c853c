"""The imports app's worker tasks: an import's run, and the recurring purge (see ``crm/recurring.py``)."""

from datetime import timedelta

from django.conf import settings
from django.tasks import task

from crm.models import Job
from crm.queues import BATCHES, RECURRING
from crm.recurring import recurring
from crm.request_id import request_id_scope
from imports.mapping import MappingInvalid
from imports.readers import FileUnusable
from imports.services import DryRunBusy, import_get, import_run


@task(queue_name=BATCHES)
def run_import(job_id: str) -> dict:
    request_id = Job.objects.filter(pk=job_id).values_list("request_id", flat=True).first()
    with request_id_scope(request_id):
        try:
            imp = import_run(job_id=job_id)
        except (FileUnusable, MappingInvalid, DryRunBusy):
            imp = import_get(job_id=job_id)  # the job says why; nothing to retry
    return {"job": str(imp.pk), "status": imp.job.status, "counts": imp.job.counts}


@recurring(every=lambda: timedelta(seconds=settings.PURGE_INTERVAL_SECONDS))
@task(queue_name=RECURRING)
def purge_seen_tokens() -> dict:
    """Forget incoming integrations' JWT ids whose tokens have expired (a replay of those fails on ``exp``), and
    delete the admin wizard's uploads that were left without starting an import a day ago."""
    from imports.integrations import seen_tokens_purge
    from imports.services import drafts_purge

    return {"seenTokens": seen_tokens_purge(), "drafts": drafts_purge()}
