"""A receiver that answers slowly holds at most WEBHOOK_MAX_IN_FLIGHT of the worker's HTTP threads: the other
subscriptions' messages keep going out, and its own wait, pending and in order, for room."""

import json
import threading
import time
from collections import defaultdict

import pytest
from django.db import connection
from django.utils import timezone

from profiles.models import Profile
from profiles.services import ProfileInput, profile_update
from profiles.services.batch import profiles_upsert_many
from webhooks import delivery
from webhooks.delivery import CLAIM_SQL, deliver_due
from webhooks.models import EventType, Message, Subscription
from webhooks.services import outbox_fan_out, subscription_create

from .conftest import Receiver


@pytest.fixture
def small_pool(settings, monkeypatch):
    """A pool of four HTTP threads for this test alone."""
    settings.WEBHOOK_HTTP_THREADS = 4
    monkeypatch.setattr(delivery, "_executor", None)
    yield
    if delivery._executor is not None:
        delivery._executor.shutdown(wait=False)


def _wait_for(condition, seconds=20.0):
    """Poll until ``condition()`` holds or the time is up (a bound against hanging, not a timing assertion)."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


@pytest.mark.django_db(transaction=True)
def test_a_slow_receiver_holds_only_its_room_and_the_others_keep_flowing(receiver, allow_private, settings, small_pool):
    settings.WEBHOOK_MAX_IN_FLIGHT = 2
    settings.WEBHOOK_TIMEOUT_SECONDS = 60
    slow, fast = Receiver(), receiver
    gate = threading.Event()
    answered: list = []
    slow.gate, slow.answered, fast.answered = gate, answered, answered
    # The slow subscription first: its messages come first in the due order, so without a limit they would take
    # every HTTP thread and the fast receiver's messages would queue behind them.
    slow_subscription, _ = subscription_create(
        url=slow.url, events=[EventType.PROFILE_CREATED, EventType.PROFILE_UPDATED]
    )
    subscription_create(url=fast.url, events=[EventType.PROFILE_CREATED])
    results = profiles_upsert_many(
        items=[ProfileInput(identifiers={"email": f"s{i}@example.com"}) for i in range(10)], source="t", actor="t"
    )
    for profile in Profile.objects.filter(pk__in=[r.client_id for r in results]):
        profile_update(profile=profile, data=ProfileInput(fields={"city": "Gdańsk"}), source="t", actor="t")
    errors = []

    def one_pass():  # a claiming thread that gets stuck on the slow receiver's answers
        try:
            deliver_due()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    stuck = threading.Thread(target=one_pass)
    try:
        stuck.start()
        assert _wait_for(lambda: len(slow.requests) == 2)

        def fast_all_delivered():  # the other claiming threads: what has room goes out, pass after pass
            deliver_due()
            return len(fast.requests) == 10

        assert _wait_for(fast_all_delivered)
        # Every fast message was answered while the slow receiver had answered nothing.
        assert [who for who, _ in answered] == [fast] * 10
        assert len(slow.requests) == 2  # no more than its room, however many of its messages are due
        waiting = Message.objects.filter(subscription=slow_subscription).exclude(
            uid__in=[r.headers["webhook-id"].removeprefix("msg_") for r in slow.requests]
        )
        assert waiting.count() == 18 and {(m.state, m.attempt_count) for m in waiting} == {("pending", 0)}
    finally:
        gate.set()
        stuck.join(60)
    assert not errors and not stuck.is_alive()
    while deliver_due():
        pass
    slow.close()

    messages = {m.webhook_id: m for m in Message.objects.filter(subscription=slow_subscription)}
    assert len(messages) == 20 and {m.state for m in messages.values()} == {"delivered"}
    assert sorted(r.headers["webhook-id"] for r in slow.requests) == sorted(messages)  # each once, none failed
    arrivals = defaultdict(list)
    for request in slow.requests:
        message = messages[request.headers["webhook-id"]]
        arrivals[message.profile_id].append((message.pk, message.event.event_type))
    for profile_id, seen in arrivals.items():
        assert [t for _, t in seen] == ["profile.created", "profile.updated"], f"profile {profile_id}: {seen}"


def _message_rows_read(plan: dict) -> int:
    """Rows of webhooks_message the plan's scans read (returned or filtered out), every loop counted."""
    rows = 0
    if plan.get("Relation Name") == "webhooks_message" and plan.get("Alias") == "m":
        loops = plan.get("Actual Loops", 1)
        rows += (plan.get("Actual Rows", 0) + plan.get("Rows Removed by Filter", 0)) * loops
    for child in plan.get("Plans", []):
        rows += _message_rows_read(child)
    return rows


@pytest.mark.django_db
def test_a_claim_never_reads_a_disabled_subscriptions_backlog(subscribe, make_profile):
    """The claim reads per enabled subscription: 500 due messages of a disabled one are not walked over."""
    off, _ = subscribe([EventType.PROFILE_CREATED])
    make_profile(email="one@example.com")
    outbox_fan_out()
    template = Message.objects.get()
    Message.objects.bulk_create(
        Message(
            subscription=off,
            event=template.event,
            profile_id=10_000 + i,
            next_attempt_at=template.next_attempt_at,
        )
        for i in range(500)
    )
    Subscription.objects.filter(pk=off.pk).update(enabled=False)
    subscribe([EventType.PROFILE_CREATED])  # enabled: its one message is the claim's
    make_profile(email="two@example.com")
    outbox_fan_out()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE webhooks_message")
        params = {"now": timezone.now(), "limit": 100, "cap": 8, "busy": "[]", "after": 0}
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + CLAIM_SQL, params)
        explained = cursor.fetchone()[0]
    (plan,) = json.loads(explained) if isinstance(explained, str) else explained
    assert Message.objects.filter(subscription=off, state="pending").count() == 501
    assert plan["Plan"]["Actual Rows"] == 1  # the enabled subscription's one message
    assert _message_rows_read(plan["Plan"]) <= 2
