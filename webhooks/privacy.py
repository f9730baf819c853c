"""The webhooks' part in erasure and portability (``profiles.privacy_registry``).

An outbox event holds the change's data and the profile as the change left it (until the fan-out renders it into
the body, which holds the profile document);
its messages and attempts (response excerpts included) hang off it. An erased person's events go with all of
that, delivered or not: a receiver learns of the erasure from the ``profile.deleted`` event, which carries ids
only and is written after this step.
"""

from __future__ import annotations

from profiles.privacy_registry import register_erasure_exempt, register_erasure_step, register_export_exempt


def webhook_events_erase(ctx) -> int:
    from webhooks.models import Event

    deleted, _ = Event.objects.filter(profile_id__in=ctx.client_ids).delete()
    return deleted


def register() -> None:
    register_erasure_step("webhook outbox", erase=webhook_events_erase, models=["webhooks.Event"], order=70)
    register_erasure_exempt("webhooks.Subscription", "a receiver's URL, events and secret, no profile data")
    register_export_exempt(
        "webhooks.Event", "copies of changes sent to the company's receivers; the data is exported from its own tables"
    )
