"""The one registry of Profile's native fields, derived from the model's ``_meta``.

Every list of profile columns in the code (the batch's COPY columns, the merge snapshot, the API
documents, the admin forms) comes from here, so a field added to the model is written, merged,
restored and shown without a second list to update. A field lands in exactly one group:

- ``IDENTIFIER_COLUMNS``: the main value of each identifier kind (the ``Identifier`` table decides
  who owns a value; these columns mirror it);
- ``SYSTEM_COLUMNS``: kept by the platform, never sent by a client;
- ``EDITABLE_COLUMNS``: every other concrete column, which a client may set by its API name.
"""

from __future__ import annotations

import re

from django.db.models.base import ModelState

from profiles.models import IdentifierKind, Profile


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
