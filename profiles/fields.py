"""The one registry of Profile's native fields, derived from the model's ``_meta``.

Every list of profile columns in the code (the batch's COPY columns, the merge snapshot, the API
documents, the admin forms) comes from here, so a field added to the model is written, merged,
restored and shown without a second list to update. A field lands in exactly one group:

- ``IDENTIFIER_COLUMNS``: the main value of each identifier kind (the ``Identifier`` table decides
  who owns a value; these columns mirror it);
- ``SYSTEM_COLUMNS``: kept by the platform, never sent by a client;
- ``EDITABLE_COLUMNS``: every other concrete column, which a client may set by its API name.

``NATIVE_FIELDS`` describes each field as the platform offers it (API name, column, value type, whether a
condition filters or a list sorts by it, whether expressions read it, its admin fieldset), and
``COMMERCE_FIGURES`` the per-profile commerce aggregates conditions and expressions read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.db.models.base import ModelState

from profiles.models import IdentifierKind, Profile, ProfileCommerce


def api_name(column: str) -> str:
    """A column's name in the API documents: ``zip_code`` → ``zipCode``."""
    head, *rest = column.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def column_name(api: str) -> str:
    """The inverse of ``api_name``: ``zipCode`` → ``zip_code``."""
    return re.sub(r"(?<!^)([A-Z])", lambda m: "_" + m.group(1).lower(), api)


# Identifier kind → the Profile column holding the profile's main value of that kind.
IDENTIFIER_COLUMNS: dict[str, str] = {
    IdentifierKind.EMAIL: "email",
    IdentifierKind.PHONE: "phone",
    IdentifierKind.CUSTOM_ID: "custom_id",
    IdentifierKind.UUID: "uuid",
}
SYSTEM_COLUMNS: tuple[str, ...] = ("attributes", "correlation_id", "last_activity_date", "created_at", "updated_at")
# Columns a profile update never writes: the key, what creating the profile set, and what only events move.
KEPT_ON_UPDATE: tuple[str, ...] = ("id", "correlation_id", "created_at", "last_activity_date")

# Every concrete column, primary key first, in the model's order (COPY writes them in this order).
ALL_COLUMNS: tuple[str, ...] = tuple(f.column for f in Profile._meta.concrete_fields)
EDITABLE_COLUMNS: tuple[str, ...] = tuple(
    c for c in ALL_COLUMNS if c != "id" and c not in IDENTIFIER_COLUMNS.values() and c not in SYSTEM_COLUMNS
)
# Editable column → its API name, and back.
EDITABLE_API_NAMES: dict[str, str] = {c: api_name(c) for c in EDITABLE_COLUMNS}
EDITABLE_BY_API_NAME: dict[str, str] = {a: c for c, a in EDITABLE_API_NAMES.items()}
# Values a column takes when a client clears it (null), where that is not NULL.
DEFAULTS: dict[str, object] = {
    f.column: f.default
    for f in Profile._meta.concrete_fields
    if f.column in EDITABLE_COLUMNS and f.has_default() and not callable(f.default)
}
# A merge snapshot keeps every column but the key and ``updated_at``; undo restores them.
SNAPSHOT_COLUMNS: tuple[str, ...] = tuple(c for c in ALL_COLUMNS if c not in {"id", "updated_at"})
TEMPORAL_COLUMNS: dict[str, str] = {
    f.column: f.get_internal_type()
    for f in Profile._meta.concrete_fields
    if f.get_internal_type() in {"DateField", "DateTimeField"}
}


# Every attribute a Profile instance carries, with its default (callable defaults are called per instance).
_ATTNAMES: tuple[tuple[str, object], ...] = tuple(
    (f.attname, f.default if f.has_default() and callable(f.default) else f.get_default())
    for f in Profile._meta.concrete_fields
)


def profile_build(**values) -> Profile:
    """An unsaved Profile from column values, without ``Model.__init__``'s per-keyword work (a batch
    builds thousands: it was a tenth of the batch's time). Same instance as ``Profile(**values)``
    for concrete fields; unknown names raise TypeError as the constructor would."""
    unknown = values.keys() - _ATTNAME_SET
    if unknown:
        raise TypeError(f"Profile() got unexpected keyword arguments: {', '.join(sorted(unknown))}")
    profile = Profile.__new__(Profile)
    state = profile.__dict__
    for attname, default in _ATTNAMES:
        state[attname] = default() if callable(default) else default
    state.update(values)
    profile._state = ModelState()
    return profile


_ATTNAME_SET = frozenset(name for name, _ in _ATTNAMES)
ATTNAMES: tuple[str, ...] = tuple(name for name, _ in _ATTNAMES)


def profile_from_row(values, *, db: str = "default") -> Profile:
    """A Profile read from the database, from its concrete columns' converted values in model order,
    without ``Model.__init__`` (what ``Model.from_db`` does through the constructor)."""
    profile = Profile.__new__(Profile)
    profile.__dict__.update(zip(ATTNAMES, values, strict=True))
    state = ModelState()
    state.adding, state.db = False, db
    profile._state = state
    return profile


# --- how the platform offers each field -------------------------------------------------------------------------

# The value types a field compares as (a condition's ops depend on it).
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
_TYPES_BY_INTERNAL_TYPE = {
    "CharField": TEXT,
    "TextField": TEXT,
    "DateField": DATE,
    "DateTimeField": DATETIME,
    "BooleanField": BOOLEAN,
    "DecimalField": NUMBER,
    "FloatField": NUMBER,
    "IntegerField": NUMBER,
    "PositiveIntegerField": NUMBER,
    "PositiveSmallIntegerField": NUMBER,
}
FILTER, SORT, EXPRESSION = "filter", "sort", "expression"
DEMOGRAPHICS, ADDRESS = "Demographics", "Address"
# Not a column: a profile is anonymous while it has no main identifier (``Profile.anonymous``).
ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class NativeField:
    api: str  # its name in documents, filters, sortBy and expressions
    column: str  # the Profile column (for a computed field, the Profile property)
    type: str  # the value type conditions compare it as; "" where they do not (the attributes JSON)
    group: str  # key, identifier, editable, system (the groups above) or computed
    filterable: bool  # a condition's {"field": …}
    sortable: bool  # a list's sortBy
    in_expressions: bool  # a name expressions read
    section: str  # the admin form's fieldset; "" outside that form


def _offer(*offers: str, section: str = "") -> tuple[frozenset[str], str]:
    return frozenset(offers), section


# What the model cannot say: where the platform offers each field, in the order it lists them (a filter's
# "one of", sortBy, the segment builder, the admin's fieldsets). A concrete column is either here or in NOT_OFFERED
# (tests/profiles/test_field_registry.py holds the model to that).
OFFERED: dict[str, tuple[frozenset[str], str]] = {
    "id": _offer(FILTER, SORT),
    "email": _offer(FILTER, SORT),
    "phone": _offer(FILTER),
    "custom_id": _offer(FILTER),
    "uuid": _offer(FILTER),
    "first_name": _offer(FILTER, SORT, EXPRESSION, section=DEMOGRAPHICS),
    "last_name": _offer(FILTER, SORT, EXPRESSION, section=DEMOGRAPHICS),
    "display_name": _offer(FILTER, section=DEMOGRAPHICS),
    "company": _offer(FILTER, EXPRESSION, section=ADDRESS),
    "address": _offer(FILTER, section=ADDRESS),
    "city": _offer(FILTER, SORT, EXPRESSION, section=ADDRESS),
    "province": _offer(FILTER, section=ADDRESS),
    "zip_code": _offer(FILTER, section=ADDRESS),
    "country_code": _offer(FILTER, EXPRESSION, section=ADDRESS),
    "sex": _offer(FILTER, EXPRESSION, section=DEMOGRAPHICS),
    "birth_date": _offer(FILTER, section=DEMOGRAPHICS),
    "avatar_url": _offer(section=DEMOGRAPHICS),  # a picture's address: nothing to select or order profiles by
    ANONYMOUS: _offer(FILTER),
    "created_at": _offer(FILTER, SORT),
    "updated_at": _offer(FILTER, SORT),
    "last_activity_date": _offer(FILTER, SORT),
}
# Columns offered nowhere, and why.
NOT_OFFERED: dict[str, str] = {
    "attributes": "custom attributes are filtered, shown and edited one by one, by name",
    "correlation_id": "a trace of the request that created the profile, for the logs",
}


def _native_field(column: str, model_field=None) -> NativeField:
    offers, section = OFFERED.get(column, (frozenset(), ""))
    if model_field is None:
        api, type_, group = column, BOOLEAN, "computed"
    elif model_field.primary_key:
        api, type_, group = "clientId", CLIENT_ID, "key"
    elif column in IDENTIFIER_COLUMNS.values():
        api, type_, group = api_name(column), IDENTIFIER, "identifier"
    else:
        api = api_name(column)
        type_ = _TYPES_BY_INTERNAL_TYPE.get(model_field.get_internal_type(), "")
        group = "system" if column in SYSTEM_COLUMNS else "editable"
    return NativeField(
        api=api,
        column=column,
        type=type_,
        group=group,
        filterable=FILTER in offers and bool(type_),
        sortable=SORT in offers and model_field is not None,
        in_expressions=EXPRESSION in offers,
        section=section,
    )


_MODEL_FIELDS = {f.column: f for f in Profile._meta.concrete_fields}
# Every native field: the offered ones in OFFERED's order, then the rest in the model's.
NATIVE_FIELDS: tuple[NativeField, ...] = (
    *(_native_field(column, _MODEL_FIELDS.get(column)) for column in OFFERED),
    *(_native_field(column, f) for column, f in _MODEL_FIELDS.items() if column not in OFFERED),
)
API_NAMES: tuple[str, ...] = tuple(f.api for f in NATIVE_FIELDS)
# API name → field: what a condition's {"field": …} takes.
FILTER_FIELDS: dict[str, NativeField] = {f.api: f for f in NATIVE_FIELDS if f.filterable}
# API name → column: what a list's sortBy takes.
SORT_COLUMNS: dict[str, str] = {f.api: f.column for f in NATIVE_FIELDS if f.sortable}
# API name → column: the native fields an expression reads.
EXPRESSION_COLUMNS: dict[str, str] = {f.api: f.column for f in NATIVE_FIELDS if f.in_expressions}


def section_columns(section: str) -> tuple[str, ...]:
    """The columns of one of the admin form's fieldsets, in the registry's order."""
    return tuple(f.column for f in NATIVE_FIELDS if f.section == section)


# The profile document's keys, in the order the seed gave them: the native fields it shows at the top level and the
# document's own keys. A native field added to the model later follows ``avatarUrl``.
DOCUMENT_KEYS: tuple[str, ...] = (
    "previousClients", "clientId", "email", "phone", "customId", "uuid", "firstName", "lastName", "displayName",
    "company", "address", "city", "province", "zipCode", "countryCode", "birthDate", "lastActivityDate", "sex",
    "avatarUrl", "anonymous", "agreements", "attributes", "tags",
)  # fmt: skip


# --- commerce figures -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CommerceFigure:
    name: str  # as the commerce document, conditions and expressions name it
    column: str  # the ProfileCommerce column
    type: str
    default: Any  # the figure of a profile without orders, which has no commerce row


# The per-profile commerce aggregates conditions and expressions read, by name → ProfileCommerce column.
_COMMERCE_COLUMNS = {
    "totalSpent": "total_spent",
    "totalOrders": "total_orders",
    "totalOrderReturns": "total_returns",
    "avgOrder": "avg_order",
    "avgPricePoint": "avg_price_point",
    "lastOrder": "last_order",
    "rfmSegment": "rfm_segment",
}


def _commerce_figure(name: str, column: str) -> CommerceFigure:
    field = ProfileCommerce._meta.get_field(column)
    type_ = _TYPES_BY_INTERNAL_TYPE[field.get_internal_type()]
    return CommerceFigure(name=name, column=column, type=type_, default=field.to_python(field.get_default()))


COMMERCE_FIGURES: dict[str, CommerceFigure] = {
    name: _commerce_figure(name, column) for name, column in _COMMERCE_COLUMNS.items()
}
