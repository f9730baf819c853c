"""The one filter language: a condition tree (JSON) parsed into typed nodes and compiled into a Django ``Q``.

Every "which profiles" question goes through here: the API's list filters (``profiles.filters`` is a thin
front), the admin's list filters, segments, their counts and membership, and exports. The JSON form::

    {"all": [C, …]}   {"any": [C, …]}   {"not": C}
    {"field": "city", "op": "eq", "value": "Warsaw"}        native fields, identifiers, anonymous, dates
    {"attribute": "loyaltyPoints", "op": "gte", "value": 100} custom attributes, by their defined type
    {"tag": "VIP"} or {"tagId": 12}                         a name matches case-insensitively; stored by id
    {"agreement": "email", "state": "granted" | "denied" | "awaiting" | "none"}
    {"event": "page.visit", "op": "gte", "count": 3, "withinDays": 30}
    {"commerce": "totalSpent" | "avgPricePoint" | "lastOrder" | …, "op": …, "value": …}
    {"segment": 12}                                         the other segment's tree (cycles are refused)

The fields and commerce figures are ``profiles.fields``' (``FILTER_FIELDS``, ``COMMERCE_FIGURES``). By job:
``parse`` (JSON → checked, typed nodes, and back: ``condition_parse``, ``condition_store``), ``compile`` (nodes →
``Q``: ``condition_q``, ``condition_compile``), ``evaluate`` (the same meaning in Python: ``value_matches``).
Segments and agreements belong to apps above the domain: they fill ``hooks`` when they start.
"""

from profiles.conditions.compile import condition_compile, condition_q
from profiles.conditions.evaluate import commerce_default_matches, value_matches
from profiles.conditions.hooks import register_agreements, register_segment_trees
from profiles.conditions.nodes import (
    AGREEMENT_STATES,
    EVENT_OPS,
    MAX_ID,
    OPS,
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
    is_time_relative,
    referenced_segments,
    uses_commerce,
    walk,
)
from profiles.conditions.parse import ATTRIBUTE_TYPES, Catalog, condition_parse, condition_store
from profiles.fields import BOOLEAN, CLIENT_ID, DATE, DATETIME, IDENTIFIER, LIST, NUMBER, TEXT

__all__ = [
    "AGREEMENT_STATES",
    "ATTRIBUTE_TYPES",
    "BOOLEAN",
    "CLIENT_ID",
    "DATE",
    "DATETIME",
    "EVENT_OPS",
    "IDENTIFIER",
    "LIST",
    "MAX_ID",
    "NUMBER",
    "OPS",
    "TEXT",
    "TYPE_OPS",
    "AgreementCond",
    "All",
    "AnyOf",
    "AttributeCond",
    "Catalog",
    "CommerceCond",
    "ConditionError",
    "EventCond",
    "FieldCond",
    "Not",
    "SegmentCond",
    "TagCond",
    "commerce_default_matches",
    "condition_compile",
    "condition_parse",
    "condition_q",
    "condition_store",
    "is_time_relative",
    "referenced_segments",
    "register_agreements",
    "register_segment_trees",
    "uses_commerce",
    "value_matches",
    "walk",
]
