"""The profiles app's worker tasks (run by the configured ``django.tasks`` backend; recurring ones see
``crm/recurring.py``)."""

from datetime import timedelta

from django.conf import settings
from django.tasks import task

from crm.models import Job
from crm.queues import BATCHES, RECURRING
from crm.recurring import recurring
from crm.request_id import request_id_scope
from profiles import signals
from profiles.models import ProfileCommerce
from profiles.partitions import event_partitions_ensure
from profiles.services.batch import profiles_batch_run
from profiles.services.transactions import rfm_recompute_all


@task(queue_name=BATCHES)
def run_profile_batch(job_id: str) -> dict:
    # The job's events carry the id of the request that submitted it.
    request_id = Job.objects.filter(pk=job_id).values_list("request_id", flat=True).first()
    with request_id_scope(request_id):
        job = profiles_batch_run(job_id=job_id)
    return {"job": str(job.pk), "status": job.status, "counts": job.counts}


@task(queue_name=BATCHES)
def rfm_recompute() -> int:
    """Re-score RFM for the whole customer base (enqueued after transaction writes; idempotent)."""
    scored = rfm_recompute_all()
    signals.rfm_recomputed.send(sender=ProfileCommerce, scored=scored)
    return scored


@recurring(every=lambda: timedelta(seconds=settings.EVENT_PARTITIONS_INTERVAL_SECONDS))
@task(queue_name=RECURRING)
def event_partitions_maintain() -> dict:
    """Keep the coming months' event partitions ready."""
    return {"created": event_partitions_ensure()}
