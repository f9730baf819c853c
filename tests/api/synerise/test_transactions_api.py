"""POST /v4/transactions: one order or a list, repeated order ids update, bad input writes nothing."""

import pytest

from profiles.models import ProfileCommerce, Transaction

pytestmark = pytest.mark.django_db


def order(order_id="O-1", email="ann@example.com", amount=99.5, currency="PLN", **extra):
    return {
        "client": {"email": email},
        "orderId": order_id,
        "value": {"amount": amount, "currency": currency},
        "recordedAt": "2026-01-02T10:00:00Z",
        "products": [
            {"sku": "S1", "name": "Shoe", "quantity": 2, "finalUnitPrice": {"amount": 49.75, "currency": currency}}
        ],
        **extra,
    }


@pytest.fixture
def ann(make_profile):
    return make_profile(email="ann@example.com")


def test_one_order(api, ann):
    assert api.post("/v4/transactions", order(), format="json").status_code == 202
    saved = Transaction.objects.get()
    assert (saved.order_id, saved.profile_id, str(saved.value), saved.currency, saved.quantity) == (
        "O-1",
        ann.pk,
        "99.50",
        "PLN",
        2,
    )
    aggregates = api.get(f"/v4/clients/{ann.pk}/aggregates").json()
    assert (aggregates["totalSpent"], aggregates["totalOrders"], aggregates["avgPricePoint"]) == (99.5, 1, 49.75)
    assert aggregates["currencySymbol"] == "zł"
    assert aggregates["lastOrder"] == "2026-01-02T10:00:00Z"


def test_a_list_and_a_repeated_order_id(api, ann):
    body = [order("O-1"), order("O-2", amount=10), order("O-1", amount=20, orderStatus="returned")]
    assert api.post("/v4/transactions", body, format="json").status_code == 202
    assert Transaction.objects.count() == 2
    assert Transaction.objects.get(order_id="O-1").status == "returned"
    api.post("/v4/transactions", order("O-2", amount=15), format="json")
    assert str(Transaction.objects.get(order_id="O-2").value) == "15.00"
    commerce = ProfileCommerce.objects.get(profile=ann)
    assert (commerce.total_orders, commerce.total_returns, str(commerce.total_spent)) == (1, 1, "15.00")


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (order(amount=-5), 400, "value.amount"),
        (order(currency="ABC"), 400, "value.currency"),
        (order(email="nobody@example.com"), 404, "client.email"),
        (order(recordedAt="soon"), 400, "recordedAt"),
        (order(recordedAt="2999-01-01T00:00:00Z"), 400, "recordedAt"),
        (order(orderStatus="lost"), 400, "orderStatus"),
        (order(value=12), 400, "value"),
        (order(products="x"), 400, "products"),
        ({"orderId": "X", "value": {"amount": 1, "currency": "PLN"}}, 400, "client"),
        ([order("G"), order(amount=-1)], 400, "[1].value.amount"),
        ([order("G"), order(email="nobody@example.com")], 404, "[1].client.email"),
        ([order("G"), "x"], 400, "[1].body"),
        ([], 400, "body"),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(api, ann, body, status, field):
    response = api.post("/v4/transactions", body, format="json")
    assert response.status_code == status, response.content
    assert response.json()["field"] == field
    assert not Transaction.objects.exists()
