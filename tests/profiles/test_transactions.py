"""Transactions, commerce figures and RFM on a known data set."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from crm.errors import NotFound, ValidationFailed
from profiles.merge_registry import MergeContext, UnmergeContext
from profiles.models import Event, ProfileCommerce, Transaction
from profiles.selectors import profile_commerce
from profiles.services.transactions import (
    RFM_SEGMENTS,
    TransactionInput,
    rfm_recompute_all,
    rfm_segment,
    transactions_merge_step,
    transactions_record,
    transactions_unmerge_step,
)
from profiles.tasks import rfm_recompute

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def order(order_id, client, value, *, days=0, currency="PLN", status="completed", items=None):
    return TransactionInput(
        order_id=order_id,
        client=client,
        value=value,
        currency=currency,
        status=status,
        time=T0 + timedelta(days=days),
        items=items or [],
    )


def record(*items):
    return transactions_record(items=list(items), source="api", actor="t")


def test_commerce_figures_on_a_known_set(make_profile):
    ann = make_profile(email="ann@example.com")
    record(
        order("A1", {"email": "ann@example.com"}, "100.00", days=0, items=[{"sku": "x", "quantity": 2}]),
        order("A2", {"clientId": ann.pk}, 50, days=10, items=[{"sku": "y", "quantity": 3}]),
        order("A3", {"email": "ann@example.com"}, "30.50", days=20, status="returned"),
        order("A4", {"email": "ann@example.com"}, "150", days=30, currency="EUR"),
    )
    figures = profile_commerce(profile_id=ann.pk)
    assert figures["totalSpent"] == 300.0  # completed orders only; currencies are not converted
    assert figures["totalOrders"] == 3
    assert figures["totalOrderReturns"] == 1
    assert figures["avgOrder"] == 100.0
    assert figures["avgPricePoint"] == 50.0  # 300 over 2 + 3 + 1 units
    assert figures["lastOrder"] == T0 + timedelta(days=30)
    assert figures["avgTimeBetweenOrdersInDays"] == 15.0  # 30 days over 2 gaps
    assert (figures["currency"], figures["currencySymbol"]) == ("EUR", "€")  # the latest order's
    ann.refresh_from_db()
    assert ann.last_activity_date >= T0 + timedelta(days=30)
    assert sorted(Event.objects.filter(profile=ann, is_system=False).values_list("action", flat=True)) == [
        "transaction.charge",
        "transaction.charge",
        "transaction.charge",
        "transaction.return",
    ]


def test_a_repeated_order_id_updates_never_duplicates(make_profile):
    ann = make_profile(email="ann@example.com")
    first = record(order("A1", {"email": "ann@example.com"}, 100))
    again = record(order("A1", {"email": "ann@example.com"}, 100))
    returned = record(order("A1", {"email": "ann@example.com"}, 100, status="returned"))
    assert (first.created, again.created, again.updated, returned.updated) == (1, 0, 1, 1)
    assert Transaction.objects.get().status == "returned"
    # a charge, nothing for the identical repeat, a return for the status change
    assert list(Event.objects.filter(profile=ann, is_system=False).values_list("action", flat=True).order_by("id")) == [
        "transaction.charge",
        "transaction.return",
    ]
    assert profile_commerce(profile_id=ann.pk)["totalOrders"] == 0
    assert profile_commerce(profile_id=ann.pk)["totalOrderReturns"] == 1


def test_an_order_moved_to_another_profile_refreshes_both(make_profile):
    ann, bob = make_profile(email="ann@example.com"), make_profile(email="bob@example.com")
    record(order("A1", {"email": "ann@example.com"}, 100))
    record(order("A1", {"email": "bob@example.com"}, 100))
    assert not ProfileCommerce.objects.filter(profile=ann).exists()
    assert profile_commerce(profile_id=bob.pk)["totalSpent"] == 100.0


@pytest.mark.parametrize(
    ("item", "field"),
    [
        (order("X", {"email": "ann@example.com"}, -1), "value.amount"),
        (order("X", {"email": "ann@example.com"}, "abc"), "value.amount"),
        (order("X", {"email": "ann@example.com"}, 1, currency="XXQ"), "value.currency"),
        (order("X", {"email": "ann@example.com"}, 1, status="lost"), "status"),
        (order("", {"email": "ann@example.com"}, 1), "orderId"),
        (order("X", {"email": "ann@example.com"}, 1, items=[{"quantity": 0}]), "products[0].quantity"),
        (order("X", {"email": "nobody@example.com"}, 1), "client.email"),
        (order("X", {"clientId": 999999}, 1), "client.id"),
    ],
)
def test_bad_input_anywhere_in_a_list_writes_nothing(make_profile, item, field):
    make_profile(email="ann@example.com")
    good = order("G", {"email": "ann@example.com"}, 10)
    with pytest.raises((ValidationFailed, NotFound)) as error:
        record(good, item)
    assert error.value.field == field
    assert error.value.details["index"] == 1
    assert not Transaction.objects.exists() and not ProfileCommerce.objects.exists()


def test_future_times_are_refused(make_profile):
    make_profile(email="ann@example.com")
    late = TransactionInput(
        order_id="F",
        client={"email": "ann@example.com"},
        value=1,
        currency="PLN",
        time=timezone.now() + timedelta(days=1),
    )
    with pytest.raises(ValidationFailed) as error:
        record(late)
    assert error.value.field == "recordedAt"


@pytest.mark.parametrize("size", [3, 300])
def test_a_list_takes_a_fixed_number_of_queries(make_profile, django_assert_num_queries, size):
    ann = make_profile(email="ann@example.com")
    items = [order(f"O{i}", {"email": "ann@example.com"} if i % 2 else {"clientId": ann.pk}, 10) for i in range(size)]
    # profiles by id, identifiers, savepoint, lock, upsert, events, activity, commerce upsert+delete, release
    with django_assert_num_queries(10):
        record(*items)
    assert Transaction.objects.count() == size


def test_rfm_grid_covers_every_score():
    names = {
        rfm_segment(recency=r, frequency=f, monetary=m) for r in range(1, 6) for f in range(1, 6) for m in range(1, 6)
    }
    assert names == {name for name, _, _ in RFM_SEGMENTS}
    assert rfm_segment(recency=5, frequency=5, monetary=5) == "Champions"
    assert rfm_segment(recency=1, frequency=1, monetary=1) == "Lost"
    assert rfm_segment(recency=1, frequency=4, monetary=4) == "At risk"
    assert rfm_segment(recency=4, frequency=5, monetary=4) == "Loyal"


def test_rfm_scores_against_the_whole_base(make_profile):
    """Five customers, each better than the last on every axis: scores 1..5, segments from the grid."""
    people = [make_profile(email=f"c{i}@example.com") for i in range(5)]
    orders = []
    for i, person in enumerate(people):
        for n in range(i + 1):  # customer i: i+1 orders of 10*(i+1), the last one i*10 days after T0
            orders.append(order(f"{i}-{n}", {"clientId": person.pk}, 10 * (i + 1), days=i * 10 - n))
    record(*orders)
    nobody = make_profile(email="none@example.com")
    assert rfm_recompute.call() == 5  # the task runs the same code as the worker would
    rows = {c.profile_id: c for c in ProfileCommerce.objects.all()}
    assert [(rows[p.pk].rfm_recency, rows[p.pk].rfm_frequency, rows[p.pk].rfm_monetary) for p in people] == [
        (1, 1, 1),
        (2, 2, 2),
        (3, 3, 3),
        (4, 4, 4),
        (5, 5, 5),
    ]
    assert [rows[p.pk].rfm_segment for p in people] == [
        "Lost",
        "Hibernating",
        "Need attention",
        "Loyal",
        "Champions",
    ]
    assert nobody.pk not in rows
    assert profile_commerce(profile_id=people[4].pk)["rfmSegment"] == "Champions"


def test_equal_figures_get_equal_scores(make_profile):
    a, b = make_profile(email="a@example.com"), make_profile(email="b@example.com")
    record(order("1", {"clientId": a.pk}, 10), order("2", {"clientId": b.pk}, 10))
    rfm_recompute_all()
    assert set(ProfileCommerce.objects.values_list("rfm_recency", "rfm_frequency", "rfm_monetary")) == {(5, 5, 5)}


def test_merge_step_carries_orders_and_unmerge_takes_them_back(make_profile):
    survivor, merged = make_profile(email="ann@example.com"), make_profile(email="bob@example.com")
    record(order("S1", {"clientId": survivor.pk}, 10), order("M1", {"clientId": merged.pk}, 40, days=5))
    data = transactions_merge_step(ctx=MergeContext(survivor=survivor, merged=merged, source="t", actor="t"))
    assert Transaction.objects.get(order_id="M1").profile_id == survivor.pk
    assert profile_commerce(profile_id=survivor.pk)["totalSpent"] == 50.0
    assert not ProfileCommerce.objects.filter(profile=merged).exists()
    assert (
        transactions_unmerge_step(
            ctx=UnmergeContext(survivor=survivor, restored=merged, data=data, source="t", actor="t")
        )
        == []
    )
    assert Transaction.objects.get(order_id="M1").profile_id == merged.pk
    assert profile_commerce(profile_id=merged.pk)["totalSpent"] == 40.0
    assert profile_commerce(profile_id=survivor.pk)["totalSpent"] == 10.0
    assert Decimal(str(profile_commerce(profile_id=survivor.pk)["avgOrder"])) == Decimal("10")
