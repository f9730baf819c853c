"""A JSON condition tree parsed into typed nodes (``profiles.conditions.nodes``), checked against the database, and
the canonical JSON a parsed tree is kept as.

``condition_parse`` checks that tags, attributes, agreements and segments exist and that every op fits its field's
type, and raises ``ConditionError`` naming the path of the bad node (``filter.all[2].op``). Values come out typed:
text lower-cased, identifiers normalised as writes normalise them, dates and date-times parsed (naive ones in UTC).
``condition_store`` gives the canonical JSON kept in a segment (tags by id).
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from crm.errors import DomainError
from profiles.conditions.hooks import hooks
from profiles.conditions.nodes import (
    AGREEMENT_STATES,
    EVENT_OPS,
    MAX_DAYS,
    MAX_DEPTH,
    MAX_ID,
    MAX_IN_VALUES,
    MAX_NODES,
    MAX_NUMBER,
    TYPE_OPS,
    AgreementCond,
    All,
    AnyOf,
    AttributeCond,
    CommerceCond,
    ConditionError,
    EventCond,
    FieldCond,
    Not,
    SegmentCond,
    TagCond,
)
from profiles.fields import (
    BOOLEAN,
    CLIENT_ID,
    COMMERCE_FIGURES,
    DATE,
    DATETIME,
    FILTER_FIELDS,
    IDENTIFIER,
    LIST,
    NUMBER,
    TEXT,
)
from profiles.models import AttributeDefinition, AttributeType, Tag
from profiles.normalize import identifier_normalize

# A custom attribute's defined type → the value type its conditions compare as.
ATTRIBUTE_TYPES = {
    AttributeType.STRING: TEXT,
    AttributeType.NUMBER: NUMBER,
    AttributeType.BOOLEAN: BOOLEAN,
    AttributeType.DATE: DATE,
    AttributeType.DATETIME: DATETIME,
    AttributeType.LIST: LIST,
}


class Catalog:
    """The database lookups a parse needs, each read once per parse (or once for many parses sharing it)."""

    def __init__(self, *, segment_loader=None):
        self._attributes = None
        self._agreements = None
        self._tags: dict[str, int | None] = {}
        self.segment_loader = segment_loader

    def attribute_type(self, name: str) -> str | None:
        if self._attributes is None:
            self._attributes = dict(AttributeDefinition.objects.values_list("name", "type"))
        return self._attributes.get(name)

    def agreement_id(self, key: str) -> int | None:
        if self._agreements is None:
            self._agreements = hooks.agreement_ids() if hooks.agreement_ids is not None else {}
        return self._agreements.get(key)

    def tag_by_name(self, name: str) -> int | None:
        key = name.strip().lower()
        if key not in self._tags:
            self._tags[key] = Tag.objects.filter(name__iexact=key).values_list("pk", flat=True).first()
        return self._tags[key]

    def tag_exists(self, tag_id: int) -> bool:
        return Tag.objects.filter(pk=tag_id).exists()


def _fail(path: str, message: str, code: str = "filter.invalid") -> ConditionError:
    return ConditionError(message, field=path, code=code)


def condition_parse(data, *, path: str = "filter", segment_loader=None, _depth: int = 0, _catalog=None, _seen=None):
    """A JSON condition tree → typed nodes, checked against the database; ``ConditionError`` names the bad node.

    ``segment_loader(segment_id=…) -> (stored tree | None)`` reads another segment's tree (for ``{"segment": id}``);
    the default is the one the segments app registers (``register_segment_trees``). ``_seen`` holds the segments on
    the current path: a cycle is refused.
    """
    catalog = _catalog or Catalog(segment_loader=segment_loader)
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
    if name not in FILTER_FIELDS:
        raise _fail(f"{path}.field", f"Unknown field '{name}'; one of {', '.join(FILTER_FIELDS)}.")
    field = FILTER_FIELDS[name]
    op = _op(data, path, TYPE_OPS[field.type])
    value = _value(field.type, op, data, path, identifier=name if field.type == IDENTIFIER else None)
    return FieldCond(field=name, column=field.column, type=field.type, op=op, value=value)


def _parse_attribute(data, path, catalog):
    _only(data, path, {"attribute", "op", "value"})
    name = _name(data, "attribute", path)
    definition_type = catalog.attribute_type(name)
    if definition_type is None:
        raise _fail(f"{path}.attribute", f"Unknown attribute '{name}'.", code="attribute.not_found")
    type_ = ATTRIBUTE_TYPES[definition_type]
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
    if figure not in COMMERCE_FIGURES:
        raise _fail(f"{path}.commerce", f"commerce must be one of {', '.join(COMMERCE_FIGURES)}; got {_show(figure)}.")
    spec = COMMERCE_FIGURES[figure]
    op = _op(data, path, TYPE_OPS[spec.type])
    value = _value(spec.type, op, data, path)
    return CommerceCond(figure=figure, column=spec.column, type=spec.type, op=op, value=value, default=spec.default)


def _parse_segment(data, path, catalog, seen, depth, counter):
    _only(data, path, {"segment"})
    segment_id = data["segment"]
    if isinstance(segment_id, bool) or not isinstance(segment_id, int) or not 0 < segment_id <= MAX_ID:
        raise _fail(f"{path}.segment", "segment takes a segment id.")
    if segment_id in seen:
        raise _fail(f"{path}.segment", f"Segment {segment_id} refers back to itself.", code="segment.cycle")
    loader = catalog.segment_loader or hooks.segment_tree
    stored = loader(segment_id=segment_id) if loader is not None else None
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
