"""The one filter language: a condition tree (JSON) parsed into typed nodes and compiled into a Django ``Q``.

Every "which profiles" question goes through here: the API's list filters (``profiles.filters`` is a thin
front), the admin's list filters, segments, their counts and membership, and exports. The JSON form::

    {"all": [C, …]}   {"any": [C, …]}   {"not": C}
    {"field": "city", "op": "eq", "value": "Warsaw"}        native fields, identifiers, anonymous, dates
    {"attribute": "loyaltyPoints", "op": "gte", "value": 100} custom attributes, by their defined type
    {"tag": "VIP"} or {"tagId": 12}                         a name matches case-insensitively; stored by id
    {"agreement": "email", "state": "granted" | "denied" | "awaiting" | "none"}
    {"event": "page.visit", "op": "gte", "count": 3, "withinDays": 30}
    {"commerce": "totalSpent" | "totalOrders" | "avgOrder" | "lastOrder" | "rfmSegment", "op": …, "value": …}
    {"segment": 12}                                         the other segment's tree (cycles are refused)

``condition_parse`` checks a tree against the database (tags, attributes, agreements and segments exist, every
op fits its field's type) and raises ``ConditionError`` naming the path of the bad node (``filter.all[2].op``);
``condition_q`` compiles a parsed tree; ``condition_store`` gives the canonical JSON kept in a segment (tags by id).

Every leaf compiles to a two-valued condition (never SQL NULL): a comparison with a missing value is false, so
``{"not": C}`` is exactly the profiles ``C`` does not match. Text compares case-insensitively as
``lower(column)``, the expression the indexes are built on; identifiers are normalised as writes normalise them
and match any value the profile owns (the identifier table), not only its main one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db.models import (
    Count,
    DateField,
    DateTimeField,
    Exists,
    F,
    JSONField,
    OuterRef,
    Q,
    Subquery,
    Value,
)
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Cast, Coalesce, Lower
from django.db.models.lookups import Contains as LikeContains
from django.db.models.lookups import (
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    In,
    IsNull,
    LessThan,
    LessThanOrEqual,
    StartsWith,
)
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from crm.errors import DomainError, ValidationFailed

OPS = ("eq", "not", "gt", "gte", "lt", "lte", "contains", "startsWith", "in", "between", "exists", "inLastDays")
EVENT_OPS = ("eq", "gte", "gt", "lte", "lt")
AGREEMENT_STATES = {"granted": "granted", "denied": "denied", "awaiting": "awaiting_confirmation", "none": None}
MAX_DEPTH = 16
MAX_NODES = 200
MAX_IN_VALUES = 1000
MAX_DAYS = 36_600
MAX_NUMBER = 10**15
MAX_ID = 2**63 - 1

# Value types, and the ops each takes.
TEXT, NUMBER, BOOLEAN, DATE, DATETIME, LIST, IDENTIFIER, CLIENT_ID = (
    "text",
    "number",
    "boolean",
    "date",
    "datetime",
    "list",
    "identifier",
    "clientId",
)
TYPE_OPS: dict[str, tuple[str, ...]] = {
    TEXT: ("eq", "not", "contains", "startsWith", "in", "exists"),
    IDENTIFIER: ("eq", "not", "contains", "startsWith", "in", "exists"),
    NUMBER: ("eq", "not", "gt", "gte", "lt", "lte", "between", "in", "exists"),
    CLIENT_ID: ("eq", "not", "gt", "gte", "lt", "lte", "between", "in"),
    BOOLEAN: ("eq", "not", "exists"),
    DATE: ("eq", "not", "gt", "gte", "lt", "lte", "between", "inLastDays", "exists"),
    DATETIME: ("gt", "gte", "lt", "lte", "between", "inLastDays", "exists"),
    LIST: ("contains", "exists"),
}

# Native fields by API name: (column, type). Identifiers go through the identifier table.
NATIVE_FIELDS: dict[str, tuple[str, str]] = {
    "clientId": ("id", CLIENT_ID),
    "email": ("email", IDENTIFIER),
    "phone": ("phone", IDENTIFIER),
    "customId": ("custom_id", IDENTIFIER),
    "uuid": ("uuid", IDENTIFIER),
    "firstName": ("first_name", TEXT),
    "lastName": ("last_name", TEXT),
    "displayName": ("display_name", TEXT),
    "company": ("company", TEXT),
    "address": ("address", TEXT),
    "city": ("city", TEXT),
    "province": ("province", TEXT),
    "zipCode": ("zip_code", TEXT),
    "countryCode": ("country_code", TEXT),
    "sex": ("sex", TEXT),
    "birthDate": ("birth_date", DATE),
    "anonymous": ("anonymous", BOOLEAN),
    "createdAt": ("created_at", DATETIME),
    "updatedAt": ("updated_at", DATETIME),
    "lastActivityDate": ("last_activity_date", DATETIME),
}
# Commerce figures: (ProfileCommerce column, type, the value of a profile without orders).
COMMERCE_FIELDS: dict[str, tuple[str, str, Any]] = {
    "totalSpent": ("total_spent", NUMBER, Decimal(0)),
    "totalOrders": ("total_orders", NUMBER, 0),
    "avgOrder": ("avg_order", NUMBER, Decimal(0)),
    "lastOrder": ("last_order", DATETIME, None),
    "rfmSegment": ("rfm_segment", TEXT, ""),
}
COMPARE = {"gt": GreaterThan, "gte": GreaterThanOrEqual, "lt": LessThan, "lte": LessThanOrEqual}


class ConditionError(ValidationFailed):
    """A condition tree that cannot be compiled; ``field`` is the path of the bad node (``filter.all[2].op``)."""

    code = "filter.invalid"


# --- the typed tree ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class All:
    children: tuple


@dataclass(frozen=True)
class AnyOf:
    children: tuple


@dataclass(frozen=True)
class Not:
    child: Any


@dataclass(frozen=True)
class FieldCond:
    field: str  # API name
    column: str
    type: str
    op: str
    value: Any


@dataclass(frozen=True)
class AttributeCond:
    name: str
    type: str  # the definition's AttributeType
    op: str
    value: Any


@dataclass(frozen=True)
class TagCond:
    tag_id: int


@dataclass(frozen=True)
class AgreementCond:
    key: str
    agreement_id: int
    state: str  # granted, denied, awaiting, none


@dataclass(frozen=True)
class EventCond:
    action: str
    op: str
    count: int
    within_days: int | None


@dataclass(frozen=True)
class CommerceCond:
    figure: str
    column: str
    type: str
    op: str
    value: Any
    default: Any


@dataclass(frozen=True)
class SegmentCond:
    segment_id: int
    tree: Any  # the parsed tree of that segment


# --- parsing ----------------------------------------------------------------------------------------------


class _Catalog:
    """The database lookups a parse needs, each read once per parse."""

    def __init__(self, *, segment_loader=None):
        self._attributes = None
        self._agreements = None
        self._tags: dict[str, int | None] = {}
        self.segment_loader = segment_loader

    def attribute_type(self, name: str) -> str | None:
        if self._attributes is None:
            from profiles.models import AttributeDefinition

            self._attributes = dict(AttributeDefinition.objects.values_list("name", "type"))
        return self._attributes.get(name)

    def agreement_id(self, key: str) -> int | None:
        if self._agreements is None:
            from consents.models import Agreement

            self._agreements = dict(Agreement.objects.values_list("key", "pk"))
        return self._agreements.get(key)

    def tag_by_name(self, name: str) -> int | None:
        from profiles.models import Tag

        key = name.strip().lower()
        if key not in self._tags:
            self._tags[key] = Tag.objects.filter(name__iexact=key).values_list("pk", flat=True).first()
        return self._tags[key]

    def tag_exists(self, tag_id: int) -> bool:
        from profiles.models import Tag

        return Tag.objects.filter(pk=tag_id).exists()


def _fail(path: str, message: str, code: str = "filter.invalid") -> ConditionError:
    return ConditionError(message, field=path, code=code)


def condition_parse(data, *, path: str = "filter", segment_loader=None, _depth: int = 0, _catalog=None, _seen=None):
    """A JSON condition tree → typed nodes, checked against the database; ``ConditionError`` names the bad node.

    ``segment_loader(segment_id) -> (stored tree | None)`` reads another segment's tree (for ``{"segment": id}``);
    the default reads the Segment table. ``_seen`` holds the segments on the current path: a cycle is refused.
    """
    catalog = _catalog or _Catalog(segment_loader=segment_loader)
    seen = _seen or frozenset()
    counter = [0]
    return _parse(data, path, catalog, seen, _depth, counter)


def _parse(data, path, catalog, seen, depth, counter):
    counter[0] += 1
    if counter[0] > MAX_NODES:
        raise _fail(path, f"A condition tree has at most {MAX_NODES} nodes.")
    if depth > MAX_DEPTH:
        raise _fail(path, f"A condition tree nests at most {MAX_DEPTH} levels.")
    if not isinstance(data, dict):
        raise _fail(path, "A condition is a JSON object.")
    for group in ("all", "any"):
        if group in data:
            _only(data, path, {group})
            items = data[group]
            if not isinstance(items, list):
                raise _fail(f"{path}.{group}", f"'{group}' takes a list of conditions.")
            children = tuple(
                _parse(item, f"{path}.{group}[{i}]", catalog, seen, depth + 1, counter) for i, item in enumerate(items)
            )
            return All(children) if group == "all" else AnyOf(children)
    if "not" in data:
        _only(data, path, {"not"})
        return Not(_parse(data["not"], f"{path}.not", catalog, seen, depth + 1, counter))
    if "field" in data:
        return _parse_field(data, path)
    if "attribute" in data:
        return _parse_attribute(data, path, catalog)
    if "tag" in data or "tagId" in data:
        return _parse_tag(data, path, catalog)
    if "agreement" in data:
        return _parse_agreement(data, path, catalog)
    if "event" in data:
        return _parse_event(data, path)
    if "commerce" in data:
        return _parse_commerce(data, path)
    if "segment" in data:
        return _parse_segment(data, path, catalog, seen, depth, counter)
    raise _fail(
        path,
        "A condition is one of: all, any, not, field, attribute, tag, tagId, agreement, event, commerce, segment.",
    )


def _only(data: dict, path: str, allowed: set[str]) -> None:
    extra = sorted(set(data) - allowed)
    if extra:
        raise _fail(f"{path}.{extra[0]}", f"Unexpected key '{extra[0]}' in this condition.")


def _op(data: dict, path: str, allowed: tuple[str, ...], default: str | None = None) -> str:
    op = data.get("op", default)
    if op not in allowed:
        raise _fail(f"{path}.op", f"op must be one of {', '.join(allowed)}; got {_show(op)}.")
    return op


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _name(data: dict, key: str, path: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise _fail(f"{path}.{key}", f"'{key}' must be a non-empty string.")
    return value.strip()


def _parse_field(data, path):
    _only(data, path, {"field", "op", "value"})
    name = _name(data, "field", path)
    if name not in NATIVE_FIELDS:
        raise _fail(f"{path}.field", f"Unknown field '{name}'; one of {', '.join(NATIVE_FIELDS)}.")
    column, type_ = NATIVE_FIELDS[name]
    op = _op(data, path, TYPE_OPS[type_])
    value = _value(type_, op, data, path, identifier=name if type_ == IDENTIFIER else None)
    return FieldCond(field=name, column=column, type=type_, op=op, value=value)


def _parse_attribute(data, path, catalog):
    from profiles.models import AttributeType

    _only(data, path, {"attribute", "op", "value"})
    name = _name(data, "attribute", path)
    definition_type = catalog.attribute_type(name)
    if definition_type is None:
        raise _fail(f"{path}.attribute", f"Unknown attribute '{name}'.", code="attribute.not_found")
    type_ = {
        AttributeType.STRING: TEXT,
        AttributeType.NUMBER: NUMBER,
        AttributeType.BOOLEAN: BOOLEAN,
        AttributeType.DATE: DATE,
        AttributeType.DATETIME: DATETIME,
        AttributeType.LIST: LIST,
    }[definition_type]
    op = _op(data, path, TYPE_OPS[type_])
    return AttributeCond(name=name, type=type_, op=op, value=_value(type_, op, data, path))


def _parse_tag(data, path, catalog):
    if "tagId" in data:
        _only(data, path, {"tagId"})
        tag_id = data["tagId"]
        if isinstance(tag_id, bool) or not isinstance(tag_id, int) or not 0 < tag_id <= MAX_ID:
            raise _fail(f"{path}.tagId", f"No tag with id {_show(tag_id)}.", code="tag.not_found")
        if not catalog.tag_exists(tag_id):
            raise _fail(f"{path}.tagId", f"No tag with id {_show(tag_id)}.", code="tag.not_found")
        return TagCond(tag_id=tag_id)
    _only(data, path, {"tag"})
    name = _name(data, "tag", path)
    tag_id = catalog.tag_by_name(name)
    if tag_id is None:
        raise _fail(f"{path}.tag", f"Unknown tag '{name}'.", code="tag.not_found")
    return TagCond(tag_id=tag_id)


def _parse_agreement(data, path, catalog):
    _only(data, path, {"agreement", "state"})
    key = _name(data, "agreement", path)
    agreement_id = catalog.agreement_id(key)
    if agreement_id is None:
        raise _fail(f"{path}.agreement", f"Unknown agreement '{key}'.", code="agreement.not_found")
    state = data.get("state")
    if state not in AGREEMENT_STATES:
        raise _fail(f"{path}.state", f"state must be one of {', '.join(AGREEMENT_STATES)}; got {_show(state)}.")
    return AgreementCond(key=key, agreement_id=agreement_id, state=state)


def _parse_event(data, path):
    _only(data, path, {"event", "op", "count", "withinDays"})
    action = _name(data, "event", path)
    if len(action) > 64:
        raise _fail(f"{path}.event", "An event action has at most 64 characters.")
    op = _op(data, path, EVENT_OPS, default="gte")
    count = data.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= 1_000_000:
        raise _fail(f"{path}.count", "count must be a whole number from 0 to 1,000,000.")
    within = data.get("withinDays")
    if within is not None and (isinstance(within, bool) or not isinstance(within, int) or not 1 <= within <= MAX_DAYS):
        raise _fail(f"{path}.withinDays", f"withinDays must be a whole number from 1 to {MAX_DAYS}.")
    return EventCond(action=action, op=op, count=count, within_days=within)


def _parse_commerce(data, path):
    _only(data, path, {"commerce", "op", "value"})
    figure = _name(data, "commerce", path)
    if figure not in COMMERCE_FIELDS:
        raise _fail(f"{path}.commerce", f"commerce must be one of {', '.join(COMMERCE_FIELDS)}; got {_show(figure)}.")
    column, type_, default = COMMERCE_FIELDS[figure]
    op = _op(data, path, TYPE_OPS[type_])
    value = _value(type_, op, data, path)
    return CommerceCond(figure=figure, column=column, type=type_, op=op, value=value, default=default)


def _parse_segment(data, path, catalog, seen, depth, counter):
    _only(data, path, {"segment"})
    segment_id = data["segment"]
    if isinstance(segment_id, bool) or not isinstance(segment_id, int) or not 0 < segment_id <= MAX_ID:
        raise _fail(f"{path}.segment", "segment takes a segment id.")
    if segment_id in seen:
        raise _fail(f"{path}.segment", f"Segment {segment_id} refers back to itself.", code="segment.cycle")
    loader = catalog.segment_loader or _segment_tree
    stored = loader(segment_id)
    if stored is None:
        raise _fail(f"{path}.segment", f"No segment with id {segment_id}.", code="segment.not_found")
    try:
        tree = _parse(stored, f"{path}.segment", catalog, seen | {segment_id}, depth + 1, counter)
    except ConditionError as exc:
        if exc.code == "segment.cycle":
            raise _fail(f"{path}.segment", exc.message, code="segment.cycle") from None
        raise _fail(
            f"{path}.segment", f"Segment {segment_id} no longer compiles: {exc.message}", code="segment.invalid"
        ) from None
    return SegmentCond(segment_id=segment_id, tree=tree)


def _segment_tree(segment_id: int):
    from segments.models import Segment

    return Segment.objects.filter(pk=segment_id).values_list("tree", flat=True).first()


def _value(type_: str, op: str, data: dict, path: str, *, identifier: str | None = None):
    """The op's value, typed and checked (``path.value`` when it is wrong)."""
    where = f"{path}.value"
    if op == "exists":
        value = data.get("value", True)
        if not isinstance(value, bool):
            raise _fail(where, "exists takes true or false.")
        return value
    if "value" not in data or data["value"] is None:
        raise _fail(where, f"{op} needs a value.")
    raw = data["value"]
    if op == "inLastDays":
        if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= MAX_DAYS:
            raise _fail(where, f"inLastDays takes a whole number of days from 0 to {MAX_DAYS}.")
        return raw
    if op == "in":
        if not isinstance(raw, list) or not raw or len(raw) > MAX_IN_VALUES:
            raise _fail(where, f"in takes a list of 1 to {MAX_IN_VALUES} values.")
        return tuple(_scalar(type_, item, f"{where}[{i}]", identifier) for i, item in enumerate(raw))
    if op == "between":
        if not isinstance(raw, list) or len(raw) != 2:
            raise _fail(where, "between takes [low, high].")
        low, high = (_scalar(type_, item, f"{where}[{i}]", identifier) for i, item in enumerate(raw))
        if low > high:
            raise _fail(where, "between takes [low, high] with low ≤ high.")
        return (low, high)
    if op in ("contains", "startsWith") and type_ in (TEXT, IDENTIFIER):
        if not isinstance(raw, str) or not raw.strip():
            raise _fail(where, f"{op} takes a non-empty string.")
        return raw.strip().lower()
    if type_ == LIST:  # contains one item
        if isinstance(raw, dict | list) or raw == "":
            raise _fail(where, "contains takes one string, number or boolean.")
        return raw
    return _scalar(type_, raw, where, identifier)


def _scalar(type_: str, raw, where: str, identifier: str | None):
    if type_ == IDENTIFIER:
        from profiles.normalize import identifier_normalize

        try:
            return identifier_normalize(identifier, raw)
        except DomainError as exc:
            raise _fail(where, exc.message, code=exc.code) from None
    if type_ == TEXT:
        if not isinstance(raw, str) or not raw.strip():
            raise _fail(where, "Expected a non-empty string.")
        return raw.strip().lower()
    if type_ in (NUMBER, CLIENT_ID):
        if isinstance(raw, str):
            try:
                raw = Decimal(raw.strip())
            except InvalidOperation:
                raise _fail(where, f"Expected a number; got {_show(raw)}.") from None
        if isinstance(raw, bool) or not isinstance(raw, int | float | Decimal):
            raise _fail(where, f"Expected a number; got {_show(raw)}.")
        if isinstance(raw, float | Decimal) and not math.isfinite(raw):
            raise _fail(where, "Expected a finite number.")
        if abs(raw) > MAX_NUMBER:
            raise _fail(where, f"Expected a number between -{MAX_NUMBER:.0e} and {MAX_NUMBER:.0e}.")
        if type_ == CLIENT_ID:
            if raw != int(raw) or not 0 <= raw < 2**63:
                raise _fail(where, "Expected a clientId.")
            return int(raw)
        if isinstance(raw, Decimal):
            return int(raw) if raw == raw.to_integral_value() else float(raw)
        return raw
    if type_ == BOOLEAN:
        if isinstance(raw, str) and raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        if not isinstance(raw, bool):
            raise _fail(where, f"Expected true or false; got {_show(raw)}.")
        return raw
    if type_ == DATE:
        parsed = parse_date(raw) if isinstance(raw, str) else None
        if parsed is None:
            raise _fail(where, f"Expected a date as YYYY-MM-DD; got {_show(raw)}.")
        return parsed
    if type_ == DATETIME:
        parsed = None
        if isinstance(raw, str):
            try:
                parsed = parse_datetime(raw.replace("Z", "+00:00")) if "T" in raw or " " in raw else None
                if parsed is None and (day := parse_date(raw)) is not None:
                    parsed = datetime(day.year, day.month, day.day)
            except ValueError:
                parsed = None
        if parsed is None:
            raise _fail(where, f"Expected an ISO 8601 date-time; got {_show(raw)}.")
        if timezone.is_naive(parsed):
            parsed = timezone.make_aware(parsed, UTC)
        return parsed
    raise AssertionError(type_)


# --- canonical JSON ---------------------------------------------------------------------------------------


def _json_value(value):
    if isinstance(value, tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def condition_store(node) -> dict:
    """The canonical JSON of a parsed tree (what a segment keeps): tags by id, values as parsed."""
    if isinstance(node, All):
        return {"all": [condition_store(c) for c in node.children]}
    if isinstance(node, AnyOf):
        return {"any": [condition_store(c) for c in node.children]}
    if isinstance(node, Not):
        return {"not": condition_store(node.child)}
    if isinstance(node, FieldCond):
        return {"field": node.field, "op": node.op, "value": _json_value(node.value)}
    if isinstance(node, AttributeCond):
        return {"attribute": node.name, "op": node.op, "value": _json_value(node.value)}
    if isinstance(node, TagCond):
        return {"tagId": node.tag_id}
    if isinstance(node, AgreementCond):
        return {"agreement": node.key, "state": node.state}
    if isinstance(node, EventCond):
        data = {"event": node.action, "op": node.op, "count": node.count}
        if node.within_days is not None:
            data["withinDays"] = node.within_days
        return data
    if isinstance(node, CommerceCond):
        return {"commerce": node.figure, "op": node.op, "value": _json_value(node.value)}
    if isinstance(node, SegmentCond):
        return {"segment": node.segment_id}
    raise AssertionError(node)


def walk(node):
    """Every node of a parsed tree, depth first (nested segments' trees included)."""
    yield node
    if isinstance(node, All | AnyOf):
        for child in node.children:
            yield from walk(child)
    elif isinstance(node, Not):
        yield from walk(node.child)
    elif isinstance(node, SegmentCond):
        yield from walk(node.tree)


def is_time_relative(node) -> bool:
    """Whether the tree's answer changes with the clock alone (``inLastDays``, ``withinDays``)."""
    return any(
        (isinstance(n, FieldCond | AttributeCond | CommerceCond) and n.op == "inLastDays")
        or (isinstance(n, EventCond) and n.within_days is not None)
        for n in walk(node)
    )


def uses_commerce(node) -> bool:
    return any(isinstance(n, CommerceCond) for n in walk(node))


def referenced_segments(node) -> set[int]:
    """Segments the tree names directly (``{"segment": id}`` at any depth of its own tree)."""
    found = set()

    def visit(n):
        if isinstance(n, SegmentCond):
            found.add(n.segment_id)
        elif isinstance(n, All | AnyOf):
            for c in n.children:
                visit(c)
        elif isinstance(n, Not):
            visit(n.child)

    visit(node)
    return found


# --- compiling --------------------------------------------------------------------------------------------


def condition_q(node, *, now: datetime | None = None, few: bool = False) -> Q:
    """The ``Q`` over ``Profile`` selecting what the tree selects.

    ``few``: the query is for a known handful of profiles (membership refresh), so event counts are correlated
    per profile; otherwise they are one grouped scan of the action's events (counts over the whole base).
    """
    return _Compiler(now or timezone.now(), few).q(node)


def _everyone() -> Q:
    """A condition every profile meets (an empty ``Q()`` would vanish from an OR instead of making it true)."""
    return Q(pk__isnull=False)


class _Compiler:
    def __init__(self, now: datetime, few: bool):
        self.now = now
        self.few = few

    def q(self, node) -> Q:
        if isinstance(node, All):
            if not node.children:
                return _everyone()
            q = self.q(node.children[0])
            for child in node.children[1:]:
                q &= self.q(child)
            return q
        if isinstance(node, AnyOf):
            if not node.children:
                return Q(pk__in=[])
            q = self.q(node.children[0])
            for child in node.children[1:]:
                q |= self.q(child)
            return q
        if isinstance(node, Not):
            return ~self.q(node.child)
        if isinstance(node, SegmentCond):
            return self.q(node.tree)
        method = getattr(self, f"_{type(node).__name__}")
        return method(node)

    # --- native fields ---

    def _FieldCond(self, node: FieldCond) -> Q:
        if node.type == IDENTIFIER:
            return self._identifier(node)
        if node.field == "anonymous":
            from profiles.models.profile import recognized_q

            anonymous = ~recognized_q()
            matched = anonymous if node.value else recognized_q()
            if node.op == "exists":
                return _everyone() if node.value else Q(pk__in=[])
            return matched if node.op == "eq" else ~matched
        return self._compare(F(node.column), node.type, node.op, node.value, nullable=node.column != "id")

    def _identifier(self, node: FieldCond) -> Q:
        from profiles.models import Identifier

        owned = Identifier.objects.filter(profile=OuterRef("pk"), kind=node.field)
        op, value = node.op, node.value
        if op == "exists":
            return Q(Exists(owned)) if value else ~Q(Exists(owned))
        if op in ("eq", "not"):
            q = Q(Exists(owned.filter(value=value)))
            return q if op == "eq" else ~q
        if op == "in":
            return Q(Exists(owned.filter(value__in=value)))
        # E-mails are stored in lower case (a plain LIKE); other kinds keep their case, so compare lower(value).
        lookup = LikeContains if op == "contains" else StartsWith
        stored = F("value") if node.field == "email" else Lower("value")
        return Q(Exists(owned.filter(lookup(stored, value))))

    def _compare(self, expr, type_: str, op: str, value, *, nullable: bool, present=None) -> Q:
        """``expr <op> value`` as a two-valued condition; ``present`` is the "has a value" test (default: not null)."""
        if present is None:
            present = Q(IsNull(expr, False)) if nullable else _everyone()
        if op == "exists":
            return present if value else ~present
        if type_ == TEXT:
            expr = Lower(expr)
        if op == "eq":
            q = Q(Exact(expr, value))
        elif op == "not":
            return ~(Q(Exact(expr, value)) & present)
        elif op in COMPARE:
            q = Q(COMPARE[op](expr, value))
        elif op == "between":
            q = Q(GreaterThanOrEqual(expr, value[0])) & Q(LessThanOrEqual(expr, value[1]))
        elif op == "in":
            q = Q(In(expr, list(value)))
        elif op == "contains":
            q = Q(LikeContains(expr, value))
        elif op == "startsWith":
            q = Q(StartsWith(expr, value))
        elif op == "inLastDays":
            since = self.now - timedelta(days=value)
            q = Q(GreaterThanOrEqual(expr, since.date() if type_ == DATE else since))
        else:
            raise AssertionError(op)
        return q & present

    # --- custom attributes ---

    def _AttributeCond(self, node: AttributeCond) -> Q:
        name, op, value = node.name, node.op, node.value
        # "Has a value": the key is there and not JSON null (->> gives SQL NULL for both).
        text = KeyTextTransform(name, "attributes")
        present = Q(IsNull(text, False))
        if op == "exists":
            return present if value else ~present
        if node.type == LIST:
            return Q(attributes__contains={name: [value]})
        if node.type in (NUMBER, BOOLEAN) and op in ("eq", "not"):
            # Containment is what the jsonb_path_ops GIN index serves; 100 matches 100.0 (jsonb compares numbers).
            q = Q(attributes__contains={name: value})
            return q if op == "eq" else ~q
        if node.type == NUMBER and op == "in":
            q = Q(pk__in=[])
            for item in value:
                q |= Q(attributes__contains={name: item})
            return q
        if node.type == NUMBER:
            expr = KeyTransform(name, "attributes")
            return self._json_compare(expr, op, value, present)
        if node.type == DATE:
            return self._compare(Cast(text, DateField()), DATE, op, value, nullable=True, present=present)
        if node.type == DATETIME:
            return self._compare(Cast(text, DateTimeField()), DATETIME, op, value, nullable=True, present=present)
        return self._compare(text, TEXT, op, value, nullable=True, present=present)

    @staticmethod
    def _json_compare(expr, op, value, present) -> Q:
        def j(v):
            return Value(v, output_field=JSONField())

        if op in COMPARE:
            q = Q(COMPARE[op](expr, j(value)))
        elif op == "between":
            q = Q(GreaterThanOrEqual(expr, j(value[0]))) & Q(LessThanOrEqual(expr, j(value[1])))
        else:
            raise AssertionError(op)
        # A number attribute holds numbers only (writes check the type): jsonb orders them numerically.
        return q & present

    # --- tags, agreements ---

    def _TagCond(self, node: TagCond) -> Q:
        from profiles.models import ProfileTag

        return Q(Exists(ProfileTag.objects.filter(profile=OuterRef("pk"), tag_id=node.tag_id)))

    def _AgreementCond(self, node: AgreementCond) -> Q:
        from consents.models import ConsentState

        decided = ConsentState.objects.filter(profile=OuterRef("pk"), agreement_id=node.agreement_id)
        status = AGREEMENT_STATES[node.state]
        if status is None:
            return ~Q(Exists(decided))
        return Q(Exists(decided.filter(status=status)))

    # --- events ---

    def _EventCond(self, node: EventCond) -> Q:
        from profiles.models import Event, EventAction

        # Custom events by their action (the partial index on custom events' (profile, action, time) serves it);
        # a system action (segment.entered, tag.added…) reads system events.
        events = Event.objects.filter(action=node.action, is_system=node.action in EventAction.SYSTEM)
        if node.within_days is not None:
            events = events.filter(time__gte=self.now - timedelta(days=node.within_days))
        op, n = node.op, node.count
        # Normalise to "at least k" / "at most k" / "exactly k".
        if op == "gt":
            op, n = "gte", n + 1
        elif op == "lt":
            if n == 0:
                return Q(pk__in=[])
            op, n = "lte", n - 1
        if op == "gte" and n == 0:
            return _everyone()
        if op in ("lte", "eq") and n == 0:
            return ~Q(Exists(events.filter(profile=OuterRef("pk"))))
        if op == "gte" and n == 1:
            return Q(Exists(events.filter(profile=OuterRef("pk"))))
        if self.few:
            counted = (
                events.filter(profile=OuterRef("pk")).order_by().values("profile").annotate(c=Count("*")).values("c")
            )
            expr = Coalesce(Subquery(counted), Value(0))
            lookup = {"gte": GreaterThanOrEqual, "lte": LessThanOrEqual, "eq": Exact}[op]
            return Q(lookup(expr, n))
        grouped = events.order_by().values("profile_id").annotate(c=Count("*"))
        if op == "gte":
            return Q(pk__in=grouped.filter(c__gte=n).values("profile_id"))
        if op == "lte":
            return ~Q(pk__in=grouped.filter(c__gt=n).values("profile_id"))
        return Q(pk__in=grouped.filter(c=n).values("profile_id"))

    # --- commerce ---

    def _CommerceCond(self, node: CommerceCond) -> Q:
        from profiles.models import ProfileCommerce

        rows = ProfileCommerce.objects.filter(profile=OuterRef("pk"))
        # The condition on the commerce row, as a filter of the row subquery (one index probe per profile). Money is
        # numeric: 99.99 means the decimal 99.99, not the nearest binary float.
        value = _decimal(node.value) if node.type == NUMBER else node.value
        inner = self._compare(F(node.column), node.type, node.op, value, nullable=node.type == DATETIME)
        q = Q(Exists(rows.filter(inner)))
        # A profile without orders has no row: it matches when its default figures would.
        if commerce_default_matches(node, now=self.now):
            q |= ~Q(Exists(rows))
        return q


def commerce_default_matches(node: CommerceCond, *, now: datetime) -> bool:
    """Whether a profile without any order (no commerce row) matches a commerce condition."""
    return value_matches(node.type, node.op, node.value, node.default, now=now)


def _decimal(value):
    if isinstance(value, tuple):
        return tuple(_decimal(v) for v in value)
    if isinstance(value, float | int) and not isinstance(value, bool):
        return Decimal(str(value))
    return value


def value_matches(type_: str, op: str, wanted, actual, *, now: datetime) -> bool:
    """The compiled SQL's meaning in Python, for one value (used for defaults, and by the tests as the oracle)."""
    present = actual is not None and actual != ""
    if isinstance(actual, Decimal):
        wanted = _decimal(wanted)
    if type_ == TEXT and op != "exists":
        actual = actual.lower() if isinstance(actual, str) else actual
    if op == "exists":
        return present if wanted else not present
    if op == "not":
        return not (present and actual == wanted)
    if not present:
        return False
    if op == "eq":
        return actual == wanted
    if op == "gt":
        return actual > wanted
    if op == "gte":
        return actual >= wanted
    if op == "lt":
        return actual < wanted
    if op == "lte":
        return actual <= wanted
    if op == "between":
        return wanted[0] <= actual <= wanted[1]
    if op == "in":
        return actual in wanted
    if op == "contains":
        return wanted in actual
    if op == "startsWith":
        return actual.startswith(wanted)
    if op == "inLastDays":
        since = now - timedelta(days=wanted)
        return actual >= (since.date() if type_ == DATE else since)
    raise AssertionError(op)


def condition_compile(data, *, path: str = "filter", now: datetime | None = None, few: bool = False) -> Q:
    """Parse and compile in one step (a surface's usual need)."""
    return condition_q(condition_parse(data, path=path), now=now, few=few)


__all__ = [
    "OPS",
    "AgreementCond",
    "All",
    "AnyOf",
    "AttributeCond",
    "CommerceCond",
    "ConditionError",
    "EventCond",
    "FieldCond",
    "Not",
    "SegmentCond",
    "TagCond",
    "condition_compile",
    "condition_parse",
    "condition_q",
    "condition_store",
    "is_time_relative",
    "referenced_segments",
    "uses_commerce",
    "value_matches",
    "walk",
]
