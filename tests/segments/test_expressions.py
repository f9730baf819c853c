"""Expressions: evaluated with simpleeval over attributes, native fields, commerce and event aggregates, typed and
formatted; unsafe text refused; the profile document gains them only with ?expand=expressions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from crm.errors import ValidationFailed
from profiles.services.events import NewEvent, events_insert
from profiles.services.transactions import TransactionInput, transactions_record
from segments.expressions import expression_validate, profile_expressions
from segments.models import Expression


@pytest.fixture
def ann(make_profile):
    ann = make_profile(email="ann@example.com", first_name="Ann", attributes={"points": 120})
    transactions_record(
        items=[
            TransactionInput(order_id=f"o{i}", client={"clientId": ann.pk}, value=v, currency="PLN")
            for i, v in enumerate(["100.00", "50.00"])
        ],
        source="tests",
    )
    now = timezone.now()
    events_insert(
        rows=[
            NewEvent(profile_id=ann.pk, action="page.visit", time=now - timedelta(days=d), is_system=False)
            for d in (1, 2, 3, 4, 5, 6, 40)
        ]
    )
    return ann


def values(profile) -> dict:
    return {e.name: (e.value, e.display, e.error) for e in profile_expressions(profile)}


def test_figures_aggregates_types_and_formats(ann):
    Expression.objects.create(name="aov", expression="totalSpent / max(totalOrders, 1)", format="currency")
    Expression.objects.create(name="busy", expression='events("page.visit", 30) > 5', type="boolean", format="yesno")
    Expression.objects.create(name="all_visits", expression='events("page.visit")', format="integer")
    Expression.objects.create(name="share", expression="points / 200", format="percent")
    Expression.objects.create(name="hello", expression='"Hi " + firstName', type="text")
    Expression.objects.create(name="missing", expression="unknownThing + 1")
    Expression.objects.create(name="zero", expression="1 / (totalOrders - 2)")
    got = values(ann)
    assert got["aov"][0] == 75.0 and got["aov"][1].endswith("75.00")
    assert got["busy"] == (True, "yes", "")
    assert got["all_visits"][:2] == (7, "7")
    assert got["share"][1] == "60%"
    assert got["hello"][0] == "Hi Ann"
    assert got["missing"][0] is None and "unknownThing" in got["missing"][2]
    assert got["zero"][0] is None and got["zero"][2]


@pytest.mark.parametrize(
    "text",
    ["__import__('os').system('id')", "().__class__.__bases__", "[x for x in range(3)]", "lambda: 1", "1 +", ""],
)
def test_unsafe_or_broken_text_is_refused(text):
    with pytest.raises(ValidationFailed):
        expression_validate(text)


def test_expand_expressions_only_when_asked(api, ann):
    Expression.objects.create(name="aov", expression="totalSpent / max(totalOrders, 1)")
    plain = api.get(f"/v4/clients/{ann.pk}").json()
    assert "expressions" not in plain
    expanded = api.get(f"/v4/clients/{ann.pk}", {"expand": "expressions"}).json()
    assert expanded["expressions"] == {"aov": 75.0}
    by_email = api.get("/v4/clients/by-email/ann@example.com", {"expand": "expressions"}).json()
    assert by_email["expressions"] == {"aov": 75.0}
    assert {k: v for k, v in expanded.items() if k != "expressions"} == plain
    assert api.get(f"/v4/clients/{ann.pk}", {"expand": "secrets"}).status_code == 400
