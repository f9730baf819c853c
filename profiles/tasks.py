"""Background tasks (Django's tasks framework): written once, run by ``manage.py db_worker`` or Celery."""

from django.tasks import task


@task
def run_profile_batch(job_id: str) -> dict:
    from profiles.services.batch import profiles_batch_run

    job = profiles_batch_run(job_id=job_id)
    return {"job": str(job.pk), "status": job.status, "counts": job.counts}


@task
def rfm_recompute() -> int:
    """Re-score RFM for the whole customer base (enqueued after transaction writes; idempotent)."""
    from profiles.services.transactions import rfm_recompute_all

    return rfm_recompute_all()
