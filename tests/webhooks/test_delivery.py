"""Delivery: Standard Webhooks signatures, retries on the schedule (a clock the tests move), 410 and five days
of failures disabling, per-profile order, resends, no redirects, the timeout."""

import json
import socket
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from standardwebhooks import Webhook

from profiles.services import ProfileInput, profile_update
from webhooks.delivery import deliver_due, next_due_in
from webhooks.models import Attempt, EventType, Message, MessageState, Subscription
from webhooks.services import event_body, message_resend

pytestmark = pytest.mark.django_db

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_delivery_verifies_with_the_reference_library(subscribe, receiver, make_profile):
    _, secret = subscribe([EventType.PROFILE_CREATED])
    profile = make_profile(email="ada@example.com")
    assert deliver_due() == 1  # real time: the library checks the timestamp is recent
    (request,) = receiver.requests
    payload = Webhook(secret).verify(request.body, request.headers)
    assert payload["type"] == "profile.created" and payload["data"]["clientId"] == profile.pk
    message = Message.objects.get()
    assert request.headers["webhook-id"] == message.webhook_id
    assert request.headers["webhook-signature"].startswith("v1,")
    assert request.headers["Content-Type"] == "application/json"
    assert message.state == MessageState.DELIVERED and message.delivered_at is not None
    (attempt,) = message.attempts.all()
    assert attempt.status_code == 200 and attempt.response_excerpt == "answer 200" and attempt.error == ""
    # A wrong secret does not verify.
    with pytest.raises(Exception, match="signature"):
        Webhook("whsec_" + "A" * 43 + "=").verify(request.body, request.headers)


def test_failures_are_retried_on_the_schedule_then_given_up(subscribe, receiver, make_profile, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [0, 5, 60]
    subscribe([EventType.PROFILE_CREATED])
    make_profile(email="ada@example.com")
    receiver.default = 500
    assert deliver_due(now=at(0)) == 1
    message = Message.objects.get()
    assert (message.state, message.attempt_count, message.next_attempt_at) == ("pending", 1, at(5))
    assert deliver_due(now=at(4.9)) == 0  # not due yet
    assert deliver_due(now=at(5)) == 1
    message.refresh_from_db()
    assert (message.attempt_count, message.next_attempt_at) == (2, at(65))
    assert deliver_due(now=at(64)) == 0
    assert deliver_due(now=at(65)) == 1
    message.refresh_from_db()
    assert (message.state, message.attempt_count) == ("failed", 3)
    assert deliver_due(now=at(100_000)) == 0
    assert len(receiver.requests) == 3
    assert {r.headers["webhook-id"] for r in receiver.requests} == {message.webhook_id}
    assert [r.headers["webhook-timestamp"] for r in receiver.requests] == [
        str(int(at(s).timestamp())) for s in (0, 5, 65)
    ]
    assert [a.status_code for a in message.attempts.all()] == [500, 500, 500]
    assert Subscription.objects.get().failing_since == at(0)


def test_a_success_after_failures_delivers_and_ends_the_failing_streak(subscribe, receiver, make_profile, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [0, 5, 60]
    subscribe([EventType.PROFILE_CREATED])
    make_profile(email="ada@example.com")
    receiver.answers.extend([503])
    deliver_due(now=at(0))
    assert Subscription.objects.get().failing_since == at(0)
    deliver_due(now=at(5))
    assert Message.objects.get().state == "delivered"
    assert Subscription.objects.get().failing_since is None


def test_a_410_disables_the_subscription(subscribe, receiver, make_profile):
    subscription, _ = subscribe([EventType.PROFILE_CREATED])
    make_profile(email="ada@example.com")
    make_profile(email="bob@example.com")
    receiver.default = 410
    assert deliver_due(now=at(0), limit=1) == 1
    subscription.refresh_from_db()
    assert not subscription.enabled and "410" in subscription.disabled_reason and subscription.disabled_at == at(0)
    assert Message.objects.filter(state="failed").count() == 1
    assert deliver_due(now=at(10)) == 0  # the other message waits for the subscription to be enabled
    assert len(receiver.requests) == 1


def test_failing_for_five_days_disables_the_subscription(subscribe, receiver, make_profile, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [0, 3600]
    subscribe([EventType.PROFILE_CREATED, EventType.PROFILE_UPDATED])
    profile = make_profile(email="ada@example.com")
    receiver.default = 500
    deliver_due(now=at(0))
    profile_update(profile=profile, data=ProfileInput(fields={"city": "Łódź"}), source="tests", actor="tests")
    # Day 4: still failing, still enabled.
    deliver_due(now=at(4 * 86400))
    assert Subscription.objects.get().enabled
    # Day 5: the streak reaches five days.
    Message.objects.filter(state="pending").update(next_attempt_at=at(0))
    deliver_due(now=at(5 * 86400))
    subscription = Subscription.objects.get()
    assert not subscription.enabled
    assert subscription.disabled_reason == "Every delivery failed for 5 days."


def test_a_profiles_messages_go_in_order_and_others_in_parallel(subscribe, receiver, make_profile, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [0, 5, 60]
    subscribe([EventType.PROFILE_CREATED, EventType.PROFILE_UPDATED])
    ada = make_profile(email="ada@example.com")
    profile_update(profile=ada, data=ProfileInput(fields={"city": "Gdańsk"}), source="tests", actor="tests")
    bob = make_profile(email="bob@example.com")
    receiver.answers.append(500)  # the first request fails: ada's creation, the oldest due message
    assert deliver_due(now=at(0), limit=1) == 1
    assert deliver_due(now=at(0)) == 1  # bob's creation; ada's update waits behind her creation
    sent = [(r.json["type"], r.json["data"]["clientId"]) for r in receiver.requests]
    assert sorted(sent) == sorted([("profile.created", ada.pk), ("profile.created", bob.pk)])
    assert deliver_due(now=at(1)) == 0  # ada's update still waits for her creation's retry
    assert deliver_due(now=at(5)) == 1  # the retry of ada's creation
    assert deliver_due(now=at(5)) == 1  # then her update
    sent = [
        (r.json["type"], r.json["data"]["clientId"]) for r in receiver.requests if r.json["data"]["clientId"] == ada.pk
    ]
    assert sent == [("profile.created", ada.pk), ("profile.created", ada.pk), ("profile.updated", ada.pk)]


def test_a_resend_is_a_new_attempt_of_the_same_message(subscribe, receiver, make_profile, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [0]
    subscription, _ = subscribe([EventType.PROFILE_CREATED])
    make_profile(email="ada@example.com")
    receiver.default = 500
    deliver_due(now=at(0))
    message = Message.objects.get()
    assert message.state == "failed"
    receiver.default = 200
    message_resend(subscription_id=subscription.pk, message_id=message.pk, now=at(10))
    assert deliver_due(now=at(10)) == 1
    message.refresh_from_db()
    assert message.state == "delivered" and message.attempt_count == 2
    assert [r.headers["webhook-id"] for r in receiver.requests] == [message.webhook_id] * 2
    assert receiver.requests[0].body == receiver.requests[1].body
    # A resend that fails is not retried.
    receiver.default = 500
    message_resend(subscription_id=subscription.pk, message_id=message.pk, now=at(20))
    deliver_due(now=at(20))
    message.refresh_from_db()
    assert (message.state, message.attempt_count) == ("failed", 3)
    assert deliver_due(now=at(10_000)) == 0


def test_redirects_are_not_followed(subscribe, receiver, make_profile):
    subscribe([EventType.PROFILE_CREATED])
    make_profile(email="ada@example.com")
    receiver.default = 302
    deliver_due(now=at(0))
    assert [r.path for r in receiver.requests] == ["/hook"]
    attempt = Attempt.objects.get()
    assert attempt.status_code == 302
    assert Message.objects.get().state == "pending"


def test_an_answer_slower_than_the_timeout_is_a_failed_attempt(subscribe, make_profile, settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 1
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts the connection, never answers
    try:
        subscribe([EventType.PROFILE_CREATED], url=f"http://127.0.0.1:{silent.getsockname()[1]}/")
        make_profile(email="ada@example.com")
        started = timezone.now()
        deliver_due(now=at(0))
        assert (timezone.now() - started).total_seconds() < 5
    finally:
        silent.close()
    attempt = Attempt.objects.get()
    assert attempt.status_code is None and "timed out" in attempt.error


def test_a_message_body_is_the_payload_json(subscribe, receiver, make_profile):
    subscribe([EventType.PROFILE_CREATED])
    make_profile(email="ada@example.com")
    deliver_due()
    assert json.loads(receiver.requests[0].body) == json.loads(event_body(event=Message.objects.get().event))


def test_messages_behind_a_retried_one_take_its_retry_time_until_it_is_done(
    subscribe, receiver, make_profile, settings
):
    """Held behind a retry, a profile's later messages are not due (a claim does not walk over them, an idle
    worker does not see work); a resend that delivers the retried one frees them at once."""
    settings.WEBHOOK_RETRY_SCHEDULE = [0, 300, 600]
    subscription, _ = subscribe([EventType.PROFILE_CREATED, EventType.PROFILE_UPDATED])
    ada = make_profile(email="ada@example.com")
    profile_update(profile=ada, data=ProfileInput(fields={"city": "Gdańsk"}), source="tests", actor="tests")
    receiver.answers.append(500)
    assert deliver_due(now=at(0)) == 1  # her creation fails; her first update waits behind it
    profile_update(profile=ada, data=ProfileInput(fields={"city": "Łódź"}), source="tests", actor="tests")
    assert deliver_due(now=at(1)) == 0  # the second update is fanned out behind it too
    created, first, second = Message.objects.order_by("id")
    assert created.next_attempt_at == first.next_attempt_at == second.next_attempt_at == at(300)
    assert next_due_in(now=at(1)) == 299
    message_resend(subscription_id=subscription.pk, message_id=created.pk, now=at(2))
    assert deliver_due(now=at(2)) == 1
    first.refresh_from_db()
    assert first.next_attempt_at == at(2)
    assert deliver_due(now=at(2)) == 1
    assert deliver_due(now=at(2)) == 1
    sent = [(r.json["type"], r.json["data"].get("changes", {}).get("city", {}).get("new")) for r in receiver.requests]
    assert sent == [
        ("profile.created", None),
        ("profile.created", None),
        ("profile.updated", "Gdańsk"),
        ("profile.updated", "Łódź"),
    ]
    assert set(Message.objects.values_list("state", flat=True)) == {"delivered"}
