"""The platform's recurring worker tasks (see ``crm/recurring.py``)."""

from datetime import timedelta

from django.conf import settings
from django.tasks import task

from crm.queues import RECURRING
from crm.recurring import recurring


@recurring(every=lambda: timedelta(seconds=settings.PURGE_INTERVAL_SECONDS))
@task(queue_name=RECURRING)
def purge_expired() -> dict:
    """Delete idempotency records (they hold answers, login JWTs among them) and finished jobs and task
    results past their retention."""
    from crm.services import expired_purge

    return expired_purge()


@recurring(every=lambda: timedelta(seconds=settings.SYSTEM_SAMPLE_SECONDS))
@task(queue_name=RECURRING)
def system_sample_record() -> dict:
    """Record every registered gauge for the System page's charts, and delete samples past their retention."""
    from crm.system import system_sample_record as record

    return record()
