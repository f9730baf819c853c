"""GET /v4/clients and /crm/v1/list: filters (the one FilterSet), paging, sorting and the 10,000 cap."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from profiles.models import Profile

pytestmark = pytest.mark.django_db


HOBBIES = ["chess", "golf"]


@pytest.fixture
def people(make_profile):
    return {
        "ann": make_profile(
            email="ann@example.com", first_name="Ann", last_name="Nowak", city="Warsaw",
            attributes={"points": 120, "tier": "gold", "club": True, "since": "2020-01-05",
                        "hobbies": ["chess", "golf"]},
        ),
        "bob": make_profile(
            email="bob@example.com", customId="B-1", first_name="Bob", last_name="Smith", city="Kraków",
            attributes={"points": 40, "tier": "silver", "club": False, "since": "2023-06-01"},
        ),
        "cid": make_profile(customId="C-1", phone="+48501234567", city="warsaw", attributes={"points": 300}),
        "anon": make_profile(uuid="24f539a0-d257-11ea-92f0-23c0f0aec77f"),
    }  # fmt: skip


def ids(response):
    assert response.status_code == 200, response.content
    return {p["clientId"] for p in response.json()}


def pks(people, *names):
    return {people[name].pk for name in names}


@pytest.mark.parametrize("path", ["/v4/clients", "/crm/v1/list"])
def test_lists_everyone_by_default(api, people, path):
    assert ids(api.get(path)) == pks(people, "ann", "bob", "cid", "anon")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("email=ANN@example.com", ["ann"]),
        ("customId=B-1", ["bob"]),
        ("phone=501 234 567", ["cid"]),
        ("uuid=24F539A0-D257-11EA-92F0-23C0F0AEC77F", ["anon"]),
        ("firstName=ann", ["ann"]),
        ("lastName=SMITH", ["bob"]),
        ("city=warsaw", ["ann", "cid"]),
        ("anonymous=true", ["anon", "cid"]),
        ("anonymous=false", ["ann", "bob"]),
        ("filters[email]=bob@example.com", ["bob"]),
        ("filters[city]=Kraków", ["bob"]),
        ("attribute=points:gt:100", ["ann", "cid"]),
        ("attribute=points:gte:120", ["ann", "cid"]),
        ("attribute=points:lt:120", ["bob"]),
        ("attribute=points:lte:120", ["ann", "bob"]),
        ("attribute=tier:eq:gold", ["ann"]),
        ("attribute=tier:not:gold", ["bob"]),  # a profile without a tier is not "not gold"
        ("attribute=tier:contains:ILV", ["bob"]),
        ("attribute=hobbies:contains:golf", ["ann"]),
        ("attribute=club:eq:false", ["bob"]),
        ("attribute=tier:exists", ["ann", "bob"]),
        ("attribute=tier:exists:false", ["cid", "anon"]),
        ("attribute=since:gt:2021-01-01", ["bob"]),
        ("attribute=points:gt:50&attribute=points:lt:200", ["ann"]),
        ("filters[attributes.points][gt]=100&city=Warsaw", ["ann", "cid"]),
        ("filters[attributes.tier]=silver", ["bob"]),
    ],
)
def test_filters(api, people, query, expected):
    assert ids(api.get(f"/v4/clients?{query}")) == pks(people, *expected)


def test_created_and_updated_ranges(api, people):
    Profile.objects.filter(pk=people["ann"].pk).update(created_at=timezone.now() - timedelta(days=10))
    since = (timezone.now() - timedelta(days=1)).isoformat()
    assert ids(api.get("/v4/clients", {"createdFrom": since})) == pks(people, "bob", "cid", "anon")
    assert ids(api.get("/v4/clients", {"createdTo": since})) == pks(people, "ann")
    assert ids(api.get("/v4/clients", {"updatedFrom": since})) == pks(people, "ann", "bob", "cid", "anon")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("attribute=unknown:eq:1", "attributes.unknown"),
        ("attribute=points:gt:many", "attributes.points"),
        ("attribute=tier:gt:5", "attributes.tier"),
        ("attribute=points:between:1", "attribute"),
        ("createdFrom=yesterday", "createdFrom"),
        ("anonymous=perhaps", "anonymous"),
        ("email=null", "email"),
        ("sortBy=password", "sortBy"),
        ("pageSize=0", "pageSize"),
        ("pageIndex=-1", "pageIndex"),
    ],
)
def test_bad_filters_are_400_naming_the_field(api, people, query, field):
    response = api.get(f"/v4/clients?{query}")
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field


def test_paging_and_sorting(api, people):
    first = api.get("/v4/clients", {"sortBy": "clientId", "pageSize": 3, "pageIndex": 0})
    second = api.get("/v4/clients", {"sortBy": "clientId", "pageSize": 3, "pageIndex": 1})
    assert [p["clientId"] for p in first.json()] == sorted(pks(people, "ann", "bob", "cid", "anon"))[:3]
    assert [p["clientId"] for p in second.json()] == sorted(pks(people, "ann", "bob", "cid", "anon"))[3:]
    assert first["X-Total-Count"] == "4"
    descending = api.get("/v4/clients", {"sortBy": "email:desc", "filters[anonymous]": "false"}).json()
    assert [p["email"] for p in descending][:2] == ["bob@example.com", "ann@example.com"]


@override_settings(LIST_MAX_RESULTS=3)
def test_never_more_than_the_cap(api, people):
    response = api.get("/v4/clients", {"pageSize": 10})
    assert len(response.json()) == 3
    assert response["X-Total-Count"] == "3"
    assert response["X-Total-Count-Capped"] == "true"
    beyond = api.get("/v4/clients", {"pageSize": 3, "pageIndex": 1})
    assert beyond.status_code == 400
    assert beyond.json()["field"] == "pageIndex"


def test_query_count_does_not_grow_with_page_size(api, make_profile):
    for i in range(30):
        make_profile(email=f"p{i}@example.com", attributes={"points": i})
    counts = []
    for size in (3, 30):
        api.get("/v4/clients", {"pageSize": 1})  # warm: the key's last-used time is written once
        with CaptureQueriesContext(connection) as queries:
            response = api.get("/v4/clients", {"pageSize": size})
        assert len(response.json()) == size
        counts.append(len(queries))
    assert counts[0] == counts[1]
    assert counts[1] <= 8
