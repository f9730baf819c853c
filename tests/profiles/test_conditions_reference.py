"""Random condition trees select, through ``POST /v4/segments/preview`` and the compiler, exactly the profiles that
the documentation's wording selects (``tests/profiles/condition_reference.py``, which knows nothing of the
compiler), over every kind of leaf: native fields, identifiers, custom attributes of each type, tags, agreements,
event counts with windows, commerce figures and another segment; and every op on a missing value is false."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from consents.models import Agreement, AgreementText
from consents.services import consent_set
from profiles.conditions import condition_compile
from profiles.models import Identifier, Profile, ProfileCommerce, Tag
from profiles.services import ProfileInput, profile_upsert
from profiles.services.attributes import attribute_definition_create
from profiles.services.events import NewEvent, events_insert
from profiles.services.tags import tags_add
from segments.services import segment_create
from tests.profiles.condition_reference import matches

NOW = datetime.now(UTC).replace(microsecond=0)
TODAY = NOW.date()
PEOPLE = 18  # at most 20: the preview lists the first 20 profiles it selects
ATTRIBUTE_TYPES = {
    "tier": "string", "points": "number", "club": "boolean", "joined": "date", "seen": "datetime", "hobbies": "list",
}  # fmt: skip
TAGS = ("VIP", "Newsletter", "churn")
ACTIONS = ("page.visit", "cart.add")
SEGMENT_TREE = {"any": [{"tag": "VIP"}, {"attribute": "points", "op": "gte", "value": 10}]}


def ago(days: float) -> datetime:
    """A moment half a day or more away from every whole-day window the trees draw, so no clock tick flips it."""
    return NOW - timedelta(days=days)


def email(i: int) -> str:
    return f"person{i}@example.com"


def phone(i: int) -> str:
    return f"+48501234{i:03d}"


def uuid(i: int, second: bool = False) -> str:
    return f"00000000-0000-4000-{9000 if second else 8000}-{i:012d}"


def person_spec(i: int, rng: random.Random) -> dict:
    """One profile's data as plain Python, in the documentation's terms (what the reference reads)."""
    ids = {"email": [], "phone": [], "customId": [], "uuid": [uuid(i)]}
    if rng.random() < 0.7:
        ids["email"].append(email(i))
        if rng.random() < 0.3:
            ids["email"].append(f"alt{i}@example.org")
    if rng.random() < 0.4:
        ids["phone"].append(phone(i))
    if rng.random() < 0.4:
        ids["customId"].append(f"C-{i}x")
    if rng.random() < 0.3:
        ids["uuid"].append(uuid(i, second=True))
    attributes = {}
    if rng.random() < 0.6:
        attributes["tier"] = rng.choice(["gold", "Gold", "silver", "bronze"])
    if rng.random() < 0.7:
        attributes["points"] = rng.choice([0, 5, 10, 10.5, 100, -3])
    if rng.random() < 0.5:
        attributes["club"] = rng.random() < 0.5
    if rng.random() < 0.5:
        attributes["joined"] = rng.choice(
            [
                "2024-01-01",
                "2025-06-30",
                (TODAY - timedelta(days=3)).isoformat(),
                (TODAY + timedelta(days=10)).isoformat(),
            ]
        )
    if rng.random() < 0.6:
        attributes["seen"] = ago(rng.choice([1.5, 20.5, 200.5])).isoformat()
    if rng.random() < 0.5:
        attributes["hobbies"] = rng.sample(["run", "swim", 3, "Ski", True], rng.randint(1, 3))
    commerce = None
    if rng.random() < 0.5:
        orders = rng.randint(1, 3)
        spent = Decimal(rng.choice(["10.00", "99.99", "250.00"])) * orders
        commerce = {
            "totalSpent": spent,
            "totalOrders": orders,
            "totalOrderReturns": rng.choice([0, 0, 1]),
            "avgOrder": (spent / orders).quantize(Decimal("0.01")),
            "avgPricePoint": Decimal(rng.choice(["5.00", "10.00", "99.99"])),
            "lastOrder": ago(rng.choice([2.5, 40.5])),
            "rfmSegment": rng.choice([None, "Champions", "Lost"]),  # None: not scored yet
        }
    agreements = {key: rng.choice(["granted", "denied", None]) for key in ("email", "sms")}
    agreements["newsletter"] = rng.choice(["granted", "denied", "awaiting", None]) if ids["email"] else None
    return {
        "index": i,
        "fields": {
            "city": rng.choice(["Warsaw", "warsaw", "Kraków", "KRAKÓW", "Gdańsk", None]),
            "firstName": rng.choice(["Anna", "anna", "Zoë", "Jan", None]),
            "countryCode": rng.choice(["PL", "DE", None]),
            "sex": rng.choice(["FEMALE", "MALE", "OTHER", "NOT_SPECIFIED"]),
            "birthDate": rng.choice([date(1990, 5, 1), date(2001, 1, 1), None]),
            "createdAt": ago(rng.choice([0.5, 10.5, 100.5])),
            "updatedAt": ago(rng.choice([0.25, 5.5])),
            "lastActivityDate": rng.choice([None, ago(0.5), ago(8.5), ago(50.5)]),
        },
        "identifiers": ids,
        "attributes": attributes,
        "tags": {name for name in TAGS if rng.random() < 0.4},
        "agreements": agreements,
        "events": [
            (rng.choice(ACTIONS), ago(rng.choice([0.5, 3.5, 10.5, 40.5, 120.5])))
            for _ in range(rng.choice([0, 0, 1, 2, 3, 5]))
        ],
        "commerce": commerce,
    }


COLUMNS = {
    "city": "city",
    "firstName": "first_name",
    "countryCode": "country_code",
    "sex": "sex",
    "birthDate": "birth_date",
}
STATES = {"awaiting": "awaiting_confirmation"}


def write(spec: dict, agreements: dict, tags: dict) -> Profile:
    """Write one spec through the services (raw rows only where the services compute the value themselves)."""
    ids, fields = spec["identifiers"], spec["fields"]
    main = {kind: values[0] for kind, values in ids.items() if values}
    profile = profile_upsert(
        data=ProfileInput(
            identifiers=main,
            attributes=spec["attributes"],
            # None as well: a profile made without a first name would get one from its e-mail.
            fields={column: fields[name] for name, column in COLUMNS.items()},
        ),
        source="tests",
        actor="tests",
    ).profile
    for kind, values in ids.items():
        for value in values[1:]:  # identifiers match any value the profile owns
            Identifier.objects.create(profile=profile, kind=kind, value=value)
    if spec["tags"]:
        tags_add(profiles=[profile], tags=[tags[name] for name in spec["tags"]], source="tests")
    for key, state in spec["agreements"].items():
        if state is not None:
            consent_set(profile=profile, agreement=agreements[key], state=STATES.get(state, state), source="tests")
    events_insert(rows=[NewEvent(profile_id=profile.pk, action=a, time=t, is_system=False) for a, t in spec["events"]])
    figures = spec["commerce"]
    if figures is not None:  # the figures themselves: how orders make them is the transactions' tests' business
        ProfileCommerce.objects.create(
            profile=profile,
            total_spent=figures["totalSpent"],
            total_orders=figures["totalOrders"],
            total_returns=figures["totalOrderReturns"],
            avg_order=figures["avgOrder"],
            avg_price_point=figures["avgPricePoint"],
            first_order=figures["lastOrder"],
            last_order=figures["lastOrder"],
            rfm_segment=figures["rfmSegment"] or "",
        )
    return profile


@pytest.fixture
def world(db):
    rng = random.Random(28)
    for name, type_ in ATTRIBUTE_TYPES.items():
        attribute_definition_create(name=name, type=type_)
    tags = {name: Tag.objects.create(name=name) for name in TAGS}
    agreements = {key: Agreement.objects.get(key=key) for key in ("email", "sms")}
    agreements["newsletter"] = Agreement.objects.create(
        key="newsletter", title="Weekly newsletter", channel="email", requires_double_opt_in=True
    )
    AgreementText.objects.create(agreement=agreements["newsletter"], version=1, text="Send me the newsletter.")
    people = []
    for i in range(PEOPLE):
        spec = person_spec(i, rng)
        profile = write(spec, agreements, tags)
        spec["clientId"] = profile.pk
        people.append(spec)
    for spec in people:  # last: every write above moves updatedAt, and events move lastActivityDate
        fields = spec["fields"]
        Profile.objects.filter(pk=spec["clientId"]).update(
            created_at=fields["createdAt"],
            updated_at=fields["updatedAt"],
            last_activity_date=fields["lastActivityDate"],
        )
    segment = segment_create(name="VIP or points", tree=SEGMENT_TREE)
    return {
        "people": people,
        "refs": {
            **{f"@client:{spec['index']}": spec["clientId"] for spec in people},
            **{f"@tag:{name}": tag.pk for name, tag in tags.items()},
            "@segment": segment.pk,
        },
        "reference": {
            "now": NOW,
            "attributeTypes": ATTRIBUTE_TYPES,
            "tags": {tag.pk: name for name, tag in tags.items()},
            "segments": {segment.pk: SEGMENT_TREE},
            "customIdIsMain": settings.CUSTOM_ID_IS_MAIN_IDENTIFIER,
        },
    }


def resolve(tree, refs):
    """The drawn tree with its placeholders (a clientId, a tag id, the segment) replaced by the world's ids."""
    if isinstance(tree, dict):
        return {key: resolve(value, refs) for key, value in tree.items()}
    if isinstance(tree, list):
        return [resolve(item, refs) for item in tree]
    if isinstance(tree, str) and tree in refs:
        return refs[tree]
    return tree


def expected(tree, world) -> set[int]:
    return {p["clientId"] for p in world["people"] if matches(tree, p, world["reference"])}


def compiled(tree, *, few: bool = False) -> set[int]:
    return set(Profile.objects.filter(condition_compile(tree, now=NOW, few=few)).values_list("pk", flat=True))


# --- random trees ---------------------------------------------------------------------------------------------


def leaf(key, name, ops, values):
    """Leaves ``{key: name, "op": op, "value": value}`` over the given ops and values."""
    return st.builds(lambda op, v: {key: name, "op": op, "value": v}, st.sampled_from(ops), values)


def exists(key, names):
    return st.one_of(
        st.builds(lambda n, v: {key: n, "op": "exists", "value": v}, st.sampled_from(names), st.booleans()),
        st.builds(lambda n: {key: n, "op": "exists"}, st.sampled_from(names)),
    )


def pair(values):
    return st.lists(values, min_size=2, max_size=2).map(sorted)


DAYS = st.sampled_from([0, 1, 2, 7, 30, 365])
MOMENTS = st.sampled_from(
    [ago(d).isoformat() for d in (1, 10, 100, 1000)]
    + [ago(10.5).isoformat(), ago(0.5).isoformat(), ago(20.5).isoformat().replace("+00:00", "Z")]
    + [ago(5).replace(tzinfo=None).isoformat(), "2020-01-01", (NOW + timedelta(days=1)).isoformat()]
)
DATES = st.sampled_from(["1990-05-01", "2001-01-01", "1995-06-15", "2024-01-01", "2025-06-30", TODAY.isoformat()])
NUMBERS = st.sampled_from([0, 5, 10, 10.5, 100, -3, "10", 99.99, 250, 1, 2, 3])
CITIES = st.sampled_from(["warsaw", "WARSAW", "Kraków", "kraków", "gdańsk", "Lodz"])
INDEX = st.integers(0, PEOPLE - 1)
TEXT_OPS = ["eq", "not", "in", "contains", "startsWith"]
NUMBER_OPS = ["eq", "not", "gt", "gte", "lt", "lte"]

field_leaves = st.one_of(
    leaf("field", "city", ["eq", "not"], CITIES),
    leaf("field", "city", ["contains", "startsWith"], st.sampled_from(["war", "AK", "g", "ów"])),
    leaf("field", "city", ["in"], st.lists(CITIES, min_size=1, max_size=3)),
    leaf("field", "firstName", ["eq", "not", "startsWith"], st.sampled_from(["anna", "ZOË", "jan", "an"])),
    leaf("field", "firstName", ["in"], st.lists(st.sampled_from(["anna", "JAN", "zoë"]), min_size=1, max_size=2)),
    leaf("field", "countryCode", ["eq", "not"], st.sampled_from(["pl", "DE", "FR"])),
    leaf("field", "sex", ["eq", "not"], st.sampled_from(["female", "MALE", "not_specified"])),
    leaf("field", "birthDate", ["eq", "not", "gt", "gte", "lt", "lte"], DATES),
    leaf("field", "birthDate", ["between"], pair(DATES)),
    leaf("field", "birthDate", ["inLastDays"], DAYS),
    leaf("field", "createdAt", ["gt", "gte", "lt", "lte"], MOMENTS),
    leaf("field", "updatedAt", ["between"], pair(MOMENTS)),
    leaf("field", "lastActivityDate", ["gt", "lte"], MOMENTS),
    leaf("field", "lastActivityDate", ["inLastDays"], DAYS),
    leaf("field", "createdAt", ["inLastDays"], DAYS),
    leaf("field", "anonymous", ["eq", "not"], st.booleans()),
    leaf("field", "clientId", ["eq", "not", "gt", "gte", "lt", "lte"], INDEX.map(lambda i: f"@client:{i}")),
    leaf("field", "clientId", ["in"], st.lists(INDEX.map(lambda i: f"@client:{i}"), min_size=1, max_size=3)),
    exists("field", ["city", "firstName", "countryCode", "sex", "birthDate", "lastActivityDate", "anonymous"]),
)
identifier_leaves = st.one_of(
    leaf("field", "email", ["eq", "not"], INDEX.map(lambda i: f" PERSON{i}@Example.com ")),
    leaf("field", "email", ["eq", "not"], INDEX.map(lambda i: f"alt{i}@example.org")),
    leaf("field", "email", ["in"], st.lists(INDEX.map(email), min_size=1, max_size=3)),
    leaf("field", "email", ["contains", "startsWith"], st.sampled_from(["PERSON1", "alt", "example.org", "@"])),
    leaf("field", "phone", ["eq", "not"], INDEX.map(phone)),
    leaf("field", "phone", ["startsWith", "contains"], st.sampled_from(["+48501", "2340", "9"])),
    leaf("field", "customId", ["eq", "not"], INDEX.flatmap(lambda i: st.sampled_from([f"C-{i}x", f"c-{i}X"]))),
    leaf("field", "customId", ["contains", "startsWith"], st.sampled_from(["c-1", "X", "-2"])),
    leaf("field", "uuid", ["eq", "not"], st.builds(lambda i, s: uuid(i, s).upper(), INDEX, st.booleans())),
    leaf("field", "uuid", ["in"], st.lists(st.builds(uuid, INDEX, st.booleans()), min_size=1, max_size=3)),
    exists("field", ["email", "phone", "customId", "uuid"]),
)
attribute_leaves = st.one_of(
    leaf("attribute", "tier", TEXT_OPS[:2], st.sampled_from(["GOLD", "silver", "Bronze", "platinum"])),
    leaf("attribute", "tier", ["contains", "startsWith"], st.sampled_from(["ol", "S", "br"])),
    leaf("attribute", "tier", ["in"], st.lists(st.sampled_from(["gold", "SILVER", "iron"]), min_size=1, max_size=2)),
    leaf("attribute", "points", NUMBER_OPS, NUMBERS),
    leaf("attribute", "points", ["between"], pair(st.sampled_from([-5, 0, 5, 10, 10.5, 100]))),
    leaf("attribute", "points", ["in"], st.lists(NUMBERS, min_size=1, max_size=3)),
    leaf("attribute", "club", ["eq", "not"], st.booleans()),
    leaf("attribute", "joined", ["eq", "not", "gt", "gte", "lt", "lte"], DATES),
    leaf("attribute", "joined", ["between"], pair(DATES)),
    leaf("attribute", "joined", ["inLastDays"], DAYS),
    leaf("attribute", "seen", ["gt", "gte", "lt", "lte"], MOMENTS),
    leaf("attribute", "seen", ["between"], pair(MOMENTS)),
    leaf("attribute", "seen", ["inLastDays"], DAYS),
    leaf("attribute", "hobbies", ["contains"], st.sampled_from(["run", "ski", "Ski", 3, 3.0, "3", True, 1])),
    exists("attribute", list(ATTRIBUTE_TYPES)),
)
other_leaves = st.one_of(
    st.builds(lambda name: {"tag": name}, st.sampled_from(["vip", "NEWSLETTER", " Churn "])),
    st.builds(lambda name: {"tagId": f"@tag:{name}"}, st.sampled_from(TAGS)),
    st.builds(
        lambda a, s: {"agreement": a, "state": s},
        st.sampled_from(["email", "sms", "newsletter"]),
        st.sampled_from(["granted", "denied", "awaiting", "none"]),
    ),
    st.builds(
        lambda a, op, n, d: {
            "event": a,
            **({"op": op} if op else {}),
            **({"count": n} if n is not None else {}),
            **({"withinDays": d} if d else {}),
        },
        st.sampled_from([*ACTIONS, "newsletter.open"]),
        st.sampled_from([None, "eq", "gt", "gte", "lt", "lte"]),
        st.sampled_from([None, 0, 1, 2, 3, 4]),
        st.sampled_from([None, 1, 7, 30, 90]),
    ),
    st.builds(
        lambda f, op, v: {"commerce": f, "op": op, "value": v},
        st.sampled_from(["totalSpent", "avgOrder", "totalOrders", "totalOrderReturns", "avgPricePoint"]),
        st.sampled_from(NUMBER_OPS),
        st.sampled_from([0, 1, 2, 10, 99.99, "199.98", 250]),
    ),
    leaf("commerce", "totalSpent", ["between"], pair(st.sampled_from([0, 10, 99.99, 300]))),
    leaf("commerce", "totalOrders", ["in"], st.lists(st.sampled_from([0, 1, 2, 3]), min_size=1, max_size=2)),
    leaf("commerce", "lastOrder", ["gt", "gte", "lt", "lte"], MOMENTS),
    leaf("commerce", "lastOrder", ["inLastDays"], DAYS),
    leaf("commerce", "rfmSegment", ["eq", "not"], st.sampled_from(["champions", "LOST", "Hibernating"])),
    leaf("commerce", "rfmSegment", ["contains", "startsWith"], st.sampled_from(["amp", "L", "c"])),
    exists("commerce", ["totalSpent", "lastOrder", "rfmSegment"]),
    st.just({"segment": "@segment"}),
)
leaves = st.one_of(field_leaves, identifier_leaves, attribute_leaves, other_leaves)
trees = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.builds(lambda xs: {"all": xs}, st.lists(children, max_size=3)),
        st.builds(lambda xs: {"any": xs}, st.lists(children, max_size=3)),
        st.builds(lambda x: {"not": x}, children),
    ),
    max_leaves=6,
)


@hypothesis_settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drawn=trees)
def test_random_trees_select_what_the_documentation_says(world, api, drawn):
    tree = resolve(drawn, world["refs"])
    wanted = expected(tree, world)
    assert compiled(tree) == wanted, tree
    assert compiled(tree, few=True) == wanted, tree
    response = api.post("/v4/segments/preview", {"filter": tree}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == len(wanted), tree
    assert {client["clientId"] for client in body["clients"]} == wanted, tree


# The op "not" on a missing value, per kind: one leaf of each kind whose value some profiles lack.
MISSING_CASES = [
    {"field": "city", "op": "not", "value": "Lodz"},
    {"field": "birthDate", "op": "not", "value": "1900-01-01"},
    {"field": "email", "op": "not", "value": "nobody@example.com"},
    {"field": "customId", "op": "not", "value": "nobody"},
    {"attribute": "tier", "op": "not", "value": "platinum"},
    {"attribute": "points", "op": "not", "value": 12345},
    {"attribute": "club", "op": "not", "value": True},
    {"attribute": "joined", "op": "not", "value": "1999-01-01"},
    {"commerce": "rfmSegment", "op": "not", "value": "Hibernating"},
]


@pytest.mark.parametrize("leaf_tree", MISSING_CASES, ids=lambda t: t.get("field") or t.get("attribute") or "rfm")
def test_the_op_not_leaves_out_profiles_without_a_value(world, leaf_tree):
    """``not V`` is "has a value, and it is not V"; ``{"not": eq V}`` also takes the profiles without one."""
    key = "field" if "field" in leaf_tree else "attribute" if "attribute" in leaf_tree else "commerce"
    has = compiled({key: leaf_tree[key], "op": "exists", "value": True})
    lacks = {p["clientId"] for p in world["people"]} - has
    assert has and lacks, "the world must hold profiles with and without the value"
    equal = compiled({**leaf_tree, "op": "eq"})
    assert compiled(leaf_tree) == has - equal  # a value, and not this one
    assert compiled({"not": {**leaf_tree, "op": "eq"}}) == (has | lacks) - equal  # those without a value too
    assert compiled({"not": leaf_tree}) == lacks | equal
    assert compiled(leaf_tree) == expected(leaf_tree, world)


def test_the_world_gives_every_kind_of_leaf_both_answers(world):
    """The random test means something only if the profiles differ on what the trees ask."""
    people = world["people"]
    assert len({p["clientId"] for p in people}) == PEOPLE
    for predicate in (
        lambda p: p["commerce"] is None,
        lambda p: p["commerce"] is not None and p["commerce"]["rfmSegment"] is None,
        lambda p: bool(p["events"]),
        lambda p: bool(p["tags"]),
        lambda p: not p["identifiers"]["email"],
        lambda p: len(p["identifiers"]["email"]) > 1,
        lambda p: len(p["identifiers"]["uuid"]) > 1,
        lambda p: p["agreements"]["newsletter"] == "awaiting",
        lambda p: p["fields"]["lastActivityDate"] is None,
        *(lambda p, n=name: n in p["attributes"] for name in ATTRIBUTE_TYPES),
    ):
        answers = {bool(predicate(p)) for p in people}
        assert answers == {True, False}
