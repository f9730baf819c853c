"""Kept connections: messages to one receiver share a TCP connection; a connection the receiver closed is
replaced (the message is sent once); a kept connection is dropped when its address is no longer allowed; and a
profile's messages keep their order while several threads claim and send at once."""

import random
import threading
from collections import defaultdict

import pytest
from django.db import connection

from profiles.services import ProfileInput, profile_update
from profiles.services.batch import profiles_upsert_many
from webhooks import delivery
from webhooks.delivery import connection_pool, deliver_due
from webhooks.models import Attempt, Event, EventType, Message


@pytest.mark.django_db
def test_messages_to_one_receiver_share_a_kept_connection(subscribe, receiver, make_profile):
    subscribe([EventType.PROFILE_CREATED])
    for i in range(5):
        make_profile(email=f"p{i}@example.com")
    opened = connection_pool().opened
    for _ in range(5):
        assert deliver_due(limit=1) == 1  # one pass after another: the connection waits in the pool between them
    assert len(receiver.requests) == 5
    assert len({r.client_port for r in receiver.requests}) == 1
    assert connection_pool().opened == opened + 1
    assert Message.objects.filter(state="delivered").count() == 5


@pytest.mark.django_db
def test_a_pass_sends_its_messages_over_at_most_as_many_connections_as_threads(
    subscribe, receiver, make_profile, settings
):
    settings.WEBHOOK_MAX_IN_FLIGHT = 40  # one subscription may fill the pass
    subscribe([EventType.PROFILE_CREATED])
    items = [ProfileInput(identifiers={"email": f"b{i}@example.com"}) for i in range(40)]
    profiles_upsert_many(items=items, source="tests", actor="tests")
    opened = connection_pool().opened
    assert deliver_due(limit=40) == 40
    assert [a.status_code for a in Attempt.objects.all()] == [200] * 40, list(Attempt.objects.values("error"))
    ports = {r.client_port for r in receiver.requests}
    assert len(receiver.requests) == 40 and len(ports) <= settings.WEBHOOK_HTTP_THREADS, (
        len(ports),
        connection_pool().opened - opened,
    )


@pytest.mark.django_db
@pytest.mark.parametrize("noticed", [True, False], ids=["seen-closed-in-the-pool", "found-closed-on-sending"])
def test_a_connection_the_receiver_closed_is_replaced_and_the_message_sent_once(
    subscribe, receiver, make_profile, monkeypatch, noticed
):
    if not noticed:  # the receiver's close arrives after the pool's check: the request itself fails
        monkeypatch.setattr(delivery, "_closed_by_peer", lambda sock: False)
    subscribe([EventType.PROFILE_CREATED])
    receiver.hang_up = True
    for i in range(3):
        make_profile(email=f"p{i}@example.com")
    for _ in range(3):
        assert deliver_due(limit=1) == 1
    assert len(receiver.requests) == 3
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 3
    assert len({r.client_port for r in receiver.requests}) == 3
    assert [a.status_code for a in Attempt.objects.all()] == [200, 200, 200]


@pytest.mark.django_db
def test_a_kept_connection_is_not_used_once_its_address_is_refused(subscribe, receiver, make_profile, settings):
    subscribe([EventType.PROFILE_CREATED])
    make_profile(email="ada@example.com")
    deliver_due()
    assert len(receiver.requests) == 1  # its connection is kept
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
    make_profile(email="bob@example.com")
    deliver_due()
    assert len(receiver.requests) == 1
    refused = Attempt.objects.get(status_code__isnull=True)
    assert "127.0.0.1" in refused.error and "public addresses only" in refused.error


@pytest.mark.django_db(transaction=True)
def test_a_profiles_messages_keep_their_order_while_threads_claim_at_once(receiver, allow_private, settings):
    """Four threads claim small batches at once while a quarter of the answers fail (retried at once): each
    profile's messages reach the receiver in change order, a retry repeating the message before the next."""
    from webhooks.services import subscription_create

    settings.WEBHOOK_RETRY_SCHEDULE = [0] * 40
    rng = random.Random(11)
    receiver.answers.extend(500 if rng.random() < 0.25 else 200 for _ in range(2000))
    subscription_create(url=receiver.url, events=[EventType.PROFILE_CREATED, EventType.PROFILE_UPDATED])
    results = profiles_upsert_many(
        items=[ProfileInput(identifiers={"email": f"o{i}@example.com"}) for i in range(12)],
        source="tests",
        actor="tests",
    )
    from profiles.models import Profile

    profiles = list(Profile.objects.filter(pk__in=[r.client_id for r in results]))
    for round_ in range(4):
        for profile in profiles:
            profile_update(profile=profile, data=ProfileInput(fields={"city": f"C{round_}"}), source="t", actor="t")
    errors = []

    def claim_until_done():
        try:
            while (
                deliver_due(limit=5)
                or Event.objects.filter(fanned_out=False).exists()
                or Message.objects.filter(state="pending").exists()
            ):
                pass
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=claim_until_done) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors and not any(t.is_alive() for t in threads)

    messages = {m.webhook_id: m for m in Message.objects.all()}
    assert len(messages) == 12 * 5 and all(m.state == "delivered" for m in messages.values())
    arrivals = defaultdict(list)
    for request in receiver.requests:
        message = messages[request.headers["webhook-id"]]
        arrivals[message.profile_id].append(message.pk)
    for profile_id, ids in arrivals.items():
        assert ids == sorted(ids), f"profile {profile_id}: messages out of change order {ids}"
        assert sorted(set(ids)) == sorted(m.pk for m in messages.values() if m.profile_id == profile_id)
    assert any(r.status == 500 for r in receiver.requests)  # retries happened in between
