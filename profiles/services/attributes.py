"""Custom attributes: validation against their definitions, type inference, definitions on first use.

``AttributeCatalog`` loads the definitions once, so a batch of a thousand profiles validates its
attributes in Python without a query per item, and creates the new definitions in one statement.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS

from crm.errors import ValidationFailed
from profiles.attribute_names import RESERVED_KEYS, attribute_key
from profiles.models import AttributeDefinition, AttributeType

MAX_NAME_LENGTH = 256

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?$")


def _parse_datetime(value: str) -> datetime | None:
    if not _DATETIME_RE.match(value):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _parse_date(value: str) -> date | None:
    if not _DATE_RE.match(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def infer_type(*, value) -> str:
    if isinstance(value, bool):
        return AttributeType.BOOLEAN
    if isinstance(value, int | float):
        return AttributeType.NUMBER
    if isinstance(value, list):
        return AttributeType.LIST
    if isinstance(value, str):
        if _parse_date(value):
            return AttributeType.DATE
        if _parse_datetime(value):
            return AttributeType.DATETIME
        return AttributeType.STRING
    return "object"


def _mismatch(name: str, type_: str, value, expected: str):
    raise ValidationFailed(
        f"Attribute '{name}' is of type {type_}; {expected}, got {json_type(value=value)} {short(value=value)}.",
        field=f"attributes.{name}",
        code="attribute.type_mismatch",
    )


def coerce_value(*, name: str, type_: str, value):
    """The value to store for an attribute of this type, or ValidationFailed naming the attribute."""
    # The common cases first, without building anything (a batch checks ten attributes per profile).
    kind = type(value)
    if kind is str:
        if not value.strip():
            raise ValidationFailed(
                f"Attribute '{name}' must not be an empty string; send null to delete it.",
                field=f"attributes.{name}",
                code="attribute.empty",
            )
        if type_ == AttributeType.STRING:
            if len(value) > settings.ATTRIBUTE_MAX_STRING_LENGTH:
                _mismatch(name, type_, value, f"expected at most {settings.ATTRIBUTE_MAX_STRING_LENGTH} characters")
            return value
    elif kind is bool:
        if type_ == AttributeType.BOOLEAN:
            return value
    elif kind is int and type_ == AttributeType.NUMBER:
        return value
    if type_ == AttributeType.BOOLEAN:
        _mismatch(name, type_, value, "expected true or false")
    if type_ == AttributeType.NUMBER:
        if isinstance(value, bool) or not isinstance(value, int | float):
            _mismatch(name, type_, value, "expected a number")
        if isinstance(value, float) and not math.isfinite(value):
            _mismatch(name, type_, value, "expected a finite number")
        return value
    if type_ == AttributeType.STRING:
        _mismatch(name, type_, value, "expected a string")
    if type_ == AttributeType.DATE:
        if not isinstance(value, str) or not _parse_date(value):
            _mismatch(name, type_, value, "expected a date as YYYY-MM-DD")
        return value
    if type_ == AttributeType.DATETIME:
        parsed = _parse_datetime(value) if isinstance(value, str) else None
        if parsed is None:
            _mismatch(name, type_, value, "expected an ISO 8601 date-time")
        return parsed.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if type_ == AttributeType.LIST:
        if not isinstance(value, list):
            _mismatch(name, type_, value, "expected a list")
        if len(value) > settings.ATTRIBUTE_MAX_LIST_ITEMS or any(
            isinstance(item, dict | list) or item is None or item == "" for item in value
        ):
            _mismatch(
                name,
                type_,
                value,
                f"expected a list of at most {settings.ATTRIBUTE_MAX_LIST_ITEMS} non-empty strings, numbers "
                "or booleans",
            )
        return value
    raise AssertionError(f"unknown attribute type {type_}")


def json_type(*, value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def short(*, value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def validate_name(*, name) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValidationFailed("Attribute names must be non-empty strings.", field="attributes", code="attribute.name")
    if name != name.strip() or len(name) > MAX_NAME_LENGTH or not attribute_key(name):
        raise ValidationFailed(
            f"Attribute name '{short(value=name)}' must be 1–{MAX_NAME_LENGTH} characters, without surrounding spaces.",
            field=f"attributes.{name}",
            code="attribute.name",
        )
    if reserved := RESERVED_KEYS.get(attribute_key(name)):
        raise ValidationFailed(
            f"'{name}' is a reserved name ('{reserved}' is a native or system field) and cannot be a custom attribute.",
            field=f"attributes.{name}",
            code="attribute.reserved",
        )
    return name


@dataclass
class AttributeCatalog:
    """The attribute definitions, loaded once, plus those a write is about to create."""

    by_key: dict[str, AttributeDefinition]
    pending: dict[str, AttributeDefinition] = field(default_factory=dict)
    valid_names: set[str] = field(default_factory=set)

    @classmethod
    def load(cls) -> AttributeCatalog:
        # Writes check against it and add to it, often before their transaction opens: always the primary.
        return cls({d.key: d for d in AttributeDefinition.objects.using(DEFAULT_DB_ALIAS).all()})

    def validate(self, attributes: dict) -> dict:
        """Check a dict of attribute changes; return it with values coerced (None means delete)."""
        if not isinstance(attributes, dict):
            raise ValidationFailed("attributes must be an object.", field="attributes", code="attribute.shape")
        clean: dict = {}
        seen: dict[str, str] = {}
        new: dict[str, AttributeDefinition] = {}  # kept only if the whole write is valid
        for name, value in attributes.items():
            if name not in self.valid_names:  # a batch repeats the same names: check each once
                validate_name(name=name)
                self.valid_names.add(name)
            key = attribute_key(name)
            if key in seen:
                raise ValidationFailed(
                    f"Attributes '{seen[key]}' and '{name}' are one name spelled two ways; send only '{seen[key]}'.",
                    field=f"attributes.{name}",
                    code="attribute.near_duplicate",
                )
            seen[key] = name
            definition = self.by_key.get(key) or self.pending.get(key) or new.get(key)
            if definition is not None and definition.name != name:
                raise ValidationFailed(
                    f"Attribute '{name}' is a different spelling of the existing attribute '{definition.name}'; "
                    f"use '{definition.name}'.",
                    field=f"attributes.{name}",
                    code="attribute.near_duplicate",
                    existing=definition.name,
                )
            if value is None:
                clean[name] = None
                continue
            if definition is None:
                type_ = infer_type(value=value)
                if type_ == "object":
                    raise ValidationFailed(
                        f"Attribute '{name}' is an object; attribute values are strings, numbers, booleans, dates, "
                        "date-times or lists.",
                        field=f"attributes.{name}",
                        code="attribute.type_unsupported",
                    )
                definition = AttributeDefinition(name=name, key=key, type=type_)
                new[key] = definition
            clean[name] = coerce_value(name=name, type_=definition.type, value=value)
        self.pending.update(new)
        return clean

    def save_pending(self, *, created_by: str = "") -> None:
        """Create the definitions first used by this write (one INSERT, one check).

        Safe to call again after a rolled-back attempt: ``pending`` is kept until the catalog is
        dropped, and rows another request created first are accepted only if they agree.
        """
        if not self.pending:
            return
        for definition in self.pending.values():
            definition.created_by = created_by[:256]
        AttributeDefinition.objects.bulk_create(
            [
                AttributeDefinition(name=d.name, key=d.key, type=d.type, created_by=d.created_by)
                for d in self.pending.values()
            ],
            ignore_conflicts=True,
        )
        stored = AttributeDefinition.objects.in_bulk(list(self.pending), field_name="key")
        for key, mine in self.pending.items():
            theirs = stored.get(key)
            if theirs is None or theirs.name != mine.name or theirs.type != mine.type:
                raise ValidationFailed(
                    f"Attribute '{mine.name}' was just defined elsewhere"
                    + (f" as '{theirs.name}' ({theirs.type})." if theirs else "."),
                    field=f"attributes.{mine.name}",
                    code="attribute.near_duplicate",
                )
        self.by_key.update(stored)


def attribute_definition_create(
    *, name: str, type: str, description: str = "", created_by: str = ""
) -> AttributeDefinition:
    """Define an attribute ahead of its first use (the admin's params manager)."""
    validate_name(name=name)
    if type not in AttributeType.values:
        raise ValidationFailed(f"Unknown attribute type '{type}'.", field="type")
    catalog = AttributeCatalog.load()
    key = attribute_key(name)
    if existing := catalog.by_key.get(key):
        raise ValidationFailed(
            f"An attribute '{existing.name}' already exists"
            + (" with this name." if existing.name == name else "; use it."),
            field="name",
            code="attribute.near_duplicate",
            existing=existing.name,
        )
    catalog.pending[key] = AttributeDefinition(name=name, key=key, type=type, description=description)
    catalog.save_pending(created_by=created_by)
    definition = catalog.by_key[key]
    if description and definition.description != description:
        definition.description = description
        definition.save(update_fields=["description"])
    return definition
