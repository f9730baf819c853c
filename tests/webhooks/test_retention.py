"""The outbox's retention: delivered and given-up messages go with their attempts after their retention, then
the events left without messages; pending messages stay whatever their age."""

from datetime import timedelta

import pytest
from django.utils import timezone

from crm.recurring import recurring_tasks
from profiles.services import ProfileInput
from profiles.services.batch import profiles_upsert_many
from webhooks.delivery import deliver_due
from webhooks.models import Attempt, Event, EventType, Message
from webhooks.services import outbox_purge
from webhooks.tasks import purge_outbox

pytestmark = pytest.mark.django_db


def test_delivered_and_given_up_messages_go_after_their_retention(subscribe, receiver, settings):
    settings.WEBHOOK_DELIVERED_RETENTION_DAYS = 30
    settings.WEBHOOK_FAILED_RETENTION_DAYS = 90
    subscribe([EventType.PROFILE_CREATED])
    subscribe([EventType.PROFILE_CREATED])
    results = profiles_upsert_many(
        items=[ProfileInput(identifiers={"email": f"{n}@example.com"}) for n in ("ada", "bob", "cyd")],
        source="tests",
        actor="tests",
    )
    ada, bob, cyd = (r.client_id for r in results)
    assert deliver_due() == 6
    now = timezone.now()
    ada_first, ada_second = Message.objects.filter(profile_id=ada).order_by("id")
    Message.objects.filter(pk=ada_second.pk).update(state="pending", next_attempt_at=now)  # resent, say
    Message.objects.filter(profile_id=bob).update(state="failed", delivered_at=None)
    Message.objects.filter(profile_id=cyd).update(state="pending", next_attempt_at=now + timedelta(days=400))

    assert outbox_purge(now=now + timedelta(days=29)) == {"messages": 0, "attempts": 0, "events": 0}
    assert outbox_purge(now=now + timedelta(days=31)) == {"messages": 1, "attempts": 1, "events": 0}
    assert not Message.objects.filter(pk=ada_first.pk).exists()
    assert Event.objects.filter(profile_id=ada).exists()  # its other message is pending

    assert outbox_purge(now=now + timedelta(days=91)) == {"messages": 2, "attempts": 2, "events": 1}
    assert set(Message.objects.values_list("profile_id", flat=True)) == {ada, cyd}
    assert set(Event.objects.values_list("profile_id", flat=True)) == {ada, cyd}
    assert Attempt.objects.count() == 3  # the pending messages keep theirs

    Message.objects.filter(pk=ada_second.pk).update(state="delivered", delivered_at=now)
    assert outbox_purge(now=now + timedelta(days=400), batch=1) == {"messages": 1, "attempts": 1, "events": 1}
    assert set(Message.objects.values_list("profile_id", flat=True)) == {cyd}
    assert set(Event.objects.values_list("profile_id", flat=True)) == {cyd}


def test_the_purge_is_a_recurring_task():
    assert purge_outbox.module_path in {r.task.module_path for r in recurring_tasks()}
