"""A real merge (profiles.services.merge) carries events, tags and transactions through the registered steps."""

import pytest

from profiles.models import Event, Transaction
from profiles.selectors import profile_commerce, tags_for
from profiles.services.events import EventInput, event_record
from profiles.services.merge import profile_merge, profile_unmerge
from profiles.services.tags import tag_create, tags_add
from profiles.services.transactions import TransactionInput, transactions_record

pytestmark = pytest.mark.django_db


def test_merge_and_undo_carry_events_tags_and_orders(make_profile):
    ann = make_profile(email="ann@example.com")
    anon = make_profile(uuid="24f539a0-d257-11ea-92f0-23c0f0aec77f")
    vip, new = tag_create(name="vip"), tag_create(name="new")
    tags_add(profiles=[ann], tags=[vip], source="t")
    tags_add(profiles=[anon], tags=[vip, new], source="t")
    event_record(data=EventInput(action="page.visit", client={"clientId": anon.pk}), source="t")
    transactions_record(
        items=[TransactionInput(order_id="M1", client={"clientId": anon.pk}, value=40, currency="PLN")], source="t"
    )
    anon_events = set(Event.objects.filter(profile=anon).values_list("pk", flat=True))

    profile_merge(survivor=ann, others=[anon], source="t", forced=True)
    assert tags_for(profile_ids=[ann.pk]) == {ann.pk: ["new", "vip"]}
    assert anon_events <= set(Event.objects.filter(profile=ann).values_list("pk", flat=True))
    assert Transaction.objects.get().profile_id == ann.pk
    assert profile_commerce(profile_id=ann.pk)["totalSpent"] == 40.0
    merged_event = Event.objects.get(profile=ann, action="profile.merged")
    assert merged_event.params["mergedClientId"] == anon.pk and "steps" not in merged_event.params["snapshot"]

    profile_unmerge(profile=ann, previous_client_id=anon.pk, source="t")
    assert tags_for(profile_ids=[ann.pk, anon.pk]) == {ann.pk: ["vip"], anon.pk: ["new", "vip"]}
    assert anon_events <= set(Event.objects.filter(profile_id=anon.pk).values_list("pk", flat=True))
    assert Transaction.objects.get().profile_id == anon.pk
    assert profile_commerce(profile_id=ann.pk)["totalOrders"] == 0
    assert Event.objects.filter(action="profile.unmerged").count() == 2
