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
