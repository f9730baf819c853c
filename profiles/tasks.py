"""Background tasks (Django's tasks framework): written once, run by ``manage.py db_worker`` or Celery."""

from django.tasks import task

from crm.request_id import request_id_scope


@task
def run_profile_batch(job_id: str) -> dict:
    from crm.models import Job
    from profiles.services.batch import profiles_batch_run

    # The job's events carry the id of the request that submitted it.
    request_id = Job.objects.filter(pk=job_id).values_list("request_id", flat=True).first()
    with request_id_scope(request_id):
        job = profiles_batch_run(job_id=job_id)
    return {"job": str(job.pk), "status": job.status, "counts": job.counts}


@task
def rfm_recompute() -> int:
    """Re-score RFM for the whole customer base (enqueued after transaction writes; idempotent)."""
    from profiles.services.transactions import rfm_recompute_all

    return rfm_recompute_all()
