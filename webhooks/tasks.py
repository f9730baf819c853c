"""The webhooks app's recurring task (see ``crm/recurring.py``); delivery runs in its own worker process."""

from datetime import timedelta

from django.conf import settings
from django.tasks import task

from crm.queues import RECURRING
from crm.recurring import recurring


@recurring(every=lambda: timedelta(seconds=settings.PURGE_INTERVAL_SECONDS))
@task(queue_name=RECURRING)
def purge_outbox() -> dict:
    """Delete delivered and given-up webhook messages past their retention, their attempts, and their events."""
    from webhooks.services import outbox_purge

    return outbox_purge()
