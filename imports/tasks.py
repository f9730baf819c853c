"""The imports app's recurring task (see ``crm/recurring.py``); the import run itself lives in services.py."""

from datetime import timedelta

from django.conf import settings
from django.tasks import task

from crm.queues import RECURRING
from crm.recurring import recurring


@recurring(every=lambda: timedelta(seconds=settings.PURGE_INTERVAL_SECONDS))
@task(queue_name=RECURRING)
def purge_seen_tokens() -> dict:
    """Forget incoming integrations' JWT ids whose tokens have expired (a replay of those fails on ``exp``), and
    delete the admin wizard's uploads that were left without starting an import a day ago."""
    from imports.integrations import seen_tokens_purge
    from imports.services import drafts_purge

    return {"seenTokens": seen_tokens_purge(), "drafts": drafts_purge()}
