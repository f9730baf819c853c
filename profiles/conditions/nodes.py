"""The typed condition tree that parsing builds and compiling and evaluating read, with the language's limits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models.lookups import GreaterThan, GreaterThanOrEqual, LessThan, LessThanOrEqual

from crm.errors import ValidationFailed
from profiles.fields import BOOLEAN, CLIENT_ID, DATE, DATETIME, IDENTIFIER, LIST, NUMBER, TEXT

OPS = ("eq", "not", "gt", "gte", "lt", "lte", "contains", "startsWith", "in", "between", "exists", "inLastDays")
EVENT_OPS = ("eq", "gte", "gt", "lte", "lt")
# A condition's agreement state → the consent status it means (None: no decision recorded).
AGREEMENT_STATES = {"granted": "granted", "denied": "denied", "awaiting": "awaiting_confirmation", "none": None}
MAX_DEPTH = 16
MAX_NODES = 200
MAX_IN_VALUES = 1000
MAX_DAYS = 36_600
MAX_NUMBER = 10**15
MAX_ID = 2**63 - 1

# The ops each value type takes.
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
COMPARE = {"gt": GreaterThan, "gte": GreaterThanOrEqual, "lt": LessThan, "lte": LessThanOrEqual}


class ConditionError(ValidationFailed):
    """A condition tree that cannot be compiled; ``field`` is the path of the bad node (``filter.all[2].op``)."""

    code = "filter.invalid"


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
