"""Background tasks of the profiles app (``django.tasks``; the database backend's worker: ``manage.py db_worker``)."""

from django.tasks import task

from profiles.services.transactions import rfm_recompute_all


@task
def rfm_recompute() -> int:
    """Re-score RFM for the whole customer base (after transaction writes; idempotent, safe to run twice)."""
    return rfm_recompute_all()
