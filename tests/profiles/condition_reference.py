"""What a condition tree means, read from the wording of docs/api.md ("Condition trees") and nothing else.

This is the tests' reference for the condition compiler. It is written from the documentation, not from the
compiler: it imports nothing of the project, reads the JSON tree as a client sends it, and decides on plain Python
data that a test builds for each profile (not on what the database holds). Where the two disagree, one of them
does not do what the documentation says.

A person (one profile's data, as the test wrote it)::

    {
        "clientId": 12,
        "fields": {"city": "Warsaw", "birthDate": date(…), "createdAt": datetime(…), …},  # None: not set
        "identifiers": {"email": ["ann@example.com"], "phone": [], "customId": ["C-1"], "uuid": ["…"]},
        "attributes": {"points": 10, "tier": "gold", "joined": "2024-01-01", "hobbies": ["run", 3]},  # as sent
        "tags": {"VIP"},                                       # names
        "agreements": {"email": "granted", "sms": None},       # granted, denied, awaiting, or None (no decision)
        "events": [("page.visit", datetime(…)), …],            # (action, time)
        "commerce": None or {"totalSpent": Decimal(…), …, "lastOrder": datetime | None, "rfmSegment": str | None},
    }

The world: ``{"now": aware datetime, "attributeTypes": {name: "string|number|boolean|date|datetime|list"},
"tags": {id: name}, "segments": {id: tree}, "customIdIsMain": bool}``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

# "Text: firstName, lastName, displayName, company, address, city, province, zipCode, countryCode, sex; a date:
# birthDate; date-times: createdAt, updatedAt, lastActivityDate; the number clientId; anonymous …; the identifiers
# email, phone, customId, uuid."
TEXT_FIELDS = {
    "firstName", "lastName", "displayName", "company", "address", "city", "province", "zipCode", "countryCode", "sex",
}  # fmt: skip
DATE_FIELDS = {"birthDate"}
DATETIME_FIELDS = {"createdAt", "updatedAt", "lastActivityDate"}
IDENTIFIERS = {"email", "phone", "customId", "uuid"}
# "the amounts and counts are numbers, lastOrder a date-time, rfmSegment text"
COMMERCE_NUMBERS = {"totalSpent", "totalOrders", "totalOrderReturns", "avgOrder", "avgPricePoint"}
# "string as text"
ATTRIBUTE_KINDS = {"string": "text", "number": "number", "boolean": "boolean", "date": "date", "datetime": "datetime"}

MISSING = object()


def matches(tree: dict, person: dict, world: dict) -> bool:
    """Whether the profile ``person`` is one the tree selects."""
    if "all" in tree:  # "every C matches (an empty list matches everyone)"
        return all(matches(c, person, world) for c in tree["all"])
    if "any" in tree:  # "at least one does (an empty list matches no one)"
        return any(matches(c, person, world) for c in tree["any"])
    if "not" in tree:  # "exactly the profiles C does not match"
        return not matches(tree["not"], person, world)
    if "segment" in tree:  # "the other segment's tree"
        return matches(world["segments"][tree["segment"]], person, world)
    if "tag" in tree:  # "the name, case-insensitively"
        wanted = tree["tag"].strip().lower()
        return any(name.lower() == wanted for name in person["tags"])
    if "tagId" in tree:
        return world["tags"][tree["tagId"]] in person["tags"]
    if "agreement" in tree:  # "none: no decision recorded"
        state = person["agreements"].get(tree["agreement"])
        return (state or "none") == tree["state"]
    if "event" in tree:
        return _event(tree, person, world["now"])
    if "commerce" in tree:
        return _commerce(tree, person, world["now"])
    if "attribute" in tree:
        return _attribute(tree, person, world)
    if "field" in tree:
        return _field(tree, person, world)
    raise ValueError(f"not a condition: {tree!r}")


# --- the kinds of leaves ---------------------------------------------------------------------------------------


def _event(tree, person, now) -> bool:
    """ "the number of the profile's events of that action (with withinDays, those at or after the moment that many
    days before now; without it, all of them) compared with count … (op defaults to gte, count to 1)"."""
    days = tree.get("withinDays")
    since = now - timedelta(days=days) if days is not None else None
    n = sum(1 for action, time in person["events"] if action == tree["event"] and (since is None or time >= since))
    return _compare_number(tree.get("op", "gte"), Decimal(n), tree.get("count", 1))


def _commerce(tree, person, now) -> bool:
    """ "A profile without orders has zero figures: its amounts and counts are 0, and it has no lastOrder and no
    rfmSegment; a profile whose RFM scores are not computed yet has no rfmSegment either"."""
    figure, figures = tree["commerce"], person["commerce"]
    if figure in COMMERCE_NUMBERS:
        actual = Decimal(0) if figures is None else Decimal(str(figures[figure]))
        return _leaf("number", tree, actual, now)
    actual = None if figures is None else figures.get(figure)
    return _leaf("datetime" if figure == "lastOrder" else "text", tree, actual, now)


def _attribute(tree, person, world) -> bool:
    """ "a custom attribute, compared by its definition's type"; absent or null is missing."""
    kind = world["attributeTypes"][tree["attribute"]]
    raw = person["attributes"].get(tree["attribute"])
    if kind == "list":
        return _list(tree, raw)
    if raw is None:
        actual = None
    elif kind == "number":
        actual = Decimal(str(raw))
    elif kind == "date":
        actual = date.fromisoformat(raw)
    elif kind == "datetime":
        actual = _instant(raw)
    else:
        actual = raw
    return _leaf(ATTRIBUTE_KINDS[kind], tree, actual, world["now"])


def _list(tree, items) -> bool:
    """ "a list attribute: has an item equal to it, exactly (text case-sensitively; a number is not its text, true is
    not 1)"."""
    op = tree["op"]
    if op == "exists":
        return (items is not None) == tree.get("value", True)
    if items is None:  # a comparison with a missing value is false
        return False
    wanted = tree["value"]
    return any(_same_item(item, wanted) for item in items)


def _same_item(item, wanted) -> bool:
    if isinstance(item, bool) or isinstance(wanted, bool):
        return isinstance(item, bool) and isinstance(wanted, bool) and item == wanted
    if isinstance(item, str) or isinstance(wanted, str):
        return isinstance(item, str) and isinstance(wanted, str) and item == wanted
    return Decimal(str(item)) == Decimal(str(wanted))


def _field(tree, person, world) -> bool:
    name = tree["field"]
    if name in IDENTIFIERS:
        return _identifier(tree, person["identifiers"].get(name, []))
    if name == "anonymous":
        # "true when the profile has no e-mail, nor a customId where that is a main identifier"; always there.
        ids = person["identifiers"]
        anonymous = not ids.get("email") and not (world["customIdIsMain"] and ids.get("customId"))
        return _leaf("boolean", tree, anonymous, world["now"])
    if name == "clientId":
        return _leaf("number", tree, Decimal(person["clientId"]), world["now"])
    actual = person["fields"].get(name)
    if name in TEXT_FIELDS:
        kind = "text"
    elif name in DATE_FIELDS:
        kind = "date"
    elif name in DATETIME_FIELDS:
        kind = "datetime"
    else:
        raise ValueError(f"unknown field {name}")
    return _leaf(kind, tree, actual, world["now"])


def _normalised(kind: str, value: str) -> str:
    """ "identifiers are normalised as on writes (e-mail and uuid in lower case, phone as E.164, customId trimmed)"."""
    value = value.strip()
    return value.lower() if kind in ("email", "uuid") else value


def _identifier(tree, owned: list[str]) -> bool:
    """ "match any value the profile owns, not only its main one"; the op not: "the profile owns a value of that kind
    and none equals it"; contains and startsWith case-insensitively."""
    op, kind = tree["op"], tree["field"]
    if op == "exists":
        return bool(owned) == tree.get("value", True)
    if not owned:  # a comparison with a missing value is false
        return False
    if op == "eq":
        return _normalised(kind, tree["value"]) in owned
    if op == "not":
        return _normalised(kind, tree["value"]) not in owned
    if op == "in":
        return any(_normalised(kind, v) in owned for v in tree["value"])
    part = tree["value"].strip().lower()
    if op == "contains":
        return any(part in value.lower() for value in owned)
    if op == "startsWith":
        return any(value.lower().startswith(part) for value in owned)
    raise ValueError(op)


# --- one value against an op -----------------------------------------------------------------------------------


def _leaf(kind: str, tree: dict, actual, now: datetime) -> bool:
    """One typed value (None or empty text: missing) against the node's op and value."""
    op = tree["op"]
    present = actual is not None and actual != ""
    if op == "exists":  # "is there, or is not"
        return present == tree.get("value", True)
    if not present:  # "Every op but exists is a comparison, and a comparison with a missing value is false"
        return False
    if op == "inLastDays":
        # "at or after the moment N days before now (a date: on or after the day N days before today, UTC)"
        since = now - timedelta(days=tree["value"])
        return actual >= (since.astimezone(UTC).date() if kind == "date" else since)
    read = _reader(kind)
    if kind == "text":  # "Text compares case-insensitively"
        actual = actual.lower()
    value = tree["value"]
    if op == "in":
        return any(actual == read(v) for v in value)
    if op == "between":  # "from low to high, both included"
        return read(value[0]) <= actual <= read(value[1])
    if op == "contains":
        return read(value) in actual
    if op == "startsWith":
        return actual.startswith(read(value))
    if kind == "number":
        return _compare_number(op, actual, value)
    return _compare(op, actual, read(value))


def _reader(kind: str):
    """The value a condition gives, as the documentation says each type is written."""
    if kind == "text":
        return lambda v: v.strip().lower()
    if kind == "number":  # "a number or its text"
        return lambda v: Decimal(str(v).strip())
    if kind == "boolean":  # "booleans take true/false"
        return lambda v: v
    if kind == "date":  # "dates are YYYY-MM-DD"
        return date.fromisoformat
    if kind == "datetime":
        return _instant
    raise ValueError(kind)


def _instant(text: str) -> datetime:
    """ "date-times ISO 8601 (without an offset in UTC; a date alone is its midnight, UTC)"."""
    text = text.strip().replace("Z", "+00:00")
    moment = datetime.fromisoformat(text) if ("T" in text or " " in text) else datetime.fromisoformat(text + "T00:00")
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _compare_number(op: str, actual: Decimal, value) -> bool:
    return _compare(op, actual, Decimal(str(value).strip()))


def _compare(op: str, actual, wanted) -> bool:
    if op == "eq":
        return actual == wanted
    if op == "not":  # "is there and differs from it" (it is there: checked before)
        return actual != wanted
    if op == "gt":
        return actual > wanted
    if op == "gte":
        return actual >= wanted
    if op == "lt":
        return actual < wanted
    if op == "lte":
        return actual <= wanted
    raise ValueError(op)
