"""Input: what a write says, cleaned before anything is read (the first stop of every write and batch item).

``ProfileInput`` is a write in model terms, as a surface builds it; ``input_clean`` turns it into a ``CleanInput``
without touching the database (but for the agreements, unless the caller preloaded them): identifiers
normalised, native fields checked against the model's rules, attributes against the catalogue, agreement
decisions parsed, tag names cleaned. With ``require_identifiers`` it also applies the rule that a profile
write names at least one identifier (``identifiers_required``); a surface with its own words for that asks
``identifiers_given``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import phonenumbers

from consents.models import Agreement
from consents.services import agreements_parse, decision_time_check
from crm.errors import ValidationFailed
from profiles.fields import DEFAULTS, EDITABLE_API_NAMES
from profiles.models import IdentifierKind, Profile
from profiles.normalize import avatar_url_validate, identifier_normalize
from profiles.services.attributes import AttributeCatalog
from profiles.services.tags import tag_name_clean

Pair = tuple[str, str]
COUNTRY_CODES = frozenset(phonenumbers.SUPPORTED_REGIONS) - {"001"}
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass
class ProfileInput:
    """One profile write, in model terms. Keys not present are left unchanged; None resets or deletes."""

    identifiers: dict[str, Any] = field(default_factory=dict)  # kind -> raw value
    fields: dict[str, Any] = field(default_factory=dict)  # native field (model name) -> value
    attributes: dict[str, Any] = field(default_factory=dict)  # custom attribute name -> value
    agreements: dict[str, bool] = field(default_factory=dict)  # agreement key -> granted?
    # When the person made the decisions in ``agreements`` (imports send it): a decision older than the one in
    # force is not applied, and comes back as a warning.
    agreements_decided_at: datetime | None = None
    tags: list[str] = field(default_factory=list)  # tag names to put on the profile (created when missing)


@dataclass
class CleanInput:
    """A validated write: normalised identifiers, native fields, attributes and agreement decisions."""

    identifiers: dict[str, str | None]
    fields: dict[str, Any]
    attributes: dict[str, Any]
    agreements: list[tuple[Agreement, bool]]
    agreements_decided_at: datetime | None = None  # when the person decided (None: now, applied whatever came before)
    tags: list[str] = field(default_factory=list)  # tag names to put on the profile
    # The identifiers that carry a value, as (kind, value) pairs in their order: what the owner lookup asks.
    pairs: list[Pair] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.pairs = [(k, v) for k, v in self.identifiers.items() if v is not None]


def input_clean(
    *, data, catalog: AttributeCatalog, agreements: dict | None = None, require_identifiers: bool = False
) -> CleanInput:
    """Validate a ``ProfileInput`` without touching the database (but for agreements, unless preloaded); with
    ``require_identifiers``, a write that names no identifier is refused too (after every other rule)."""
    # Custom agreements may come as attributes keys: they leave the attributes here.
    pairs, attributes = agreements_parse(agreements=data.agreements, attributes=data.attributes, known=agreements)
    clean = CleanInput(
        identifiers=_normalize_identifiers(data.identifiers),
        fields=_validate_fields(data.fields),
        attributes=catalog.validate(attributes) if attributes else {},
        agreements=pairs,
        agreements_decided_at=decision_time_check(value=data.agreements_decided_at, field="agreementsDecidedAt"),
        tags=_tags_clean(getattr(data, "tags", None) or []),
    )
    if require_identifiers:
        identifiers_required(identifiers=clean.identifiers)
    return clean


def identifiers_given(*, identifiers: Mapping[str, Any]) -> dict[str, Any]:
    """The identifiers that carry a value (neither None nor empty), in their order. A profile write needs at
    least one: ``identifiers_required`` applies that rule, a surface with its own words asks this."""
    return {kind: value for kind, value in identifiers.items() if value not in (None, "")}


def identifiers_required(
    *, identifiers: Mapping[str, Any], error: Callable[..., Exception] = ValidationFailed
) -> dict[str, Any]:
    """``identifiers_given``, or ``error`` raised when there is none: ``ValidationFailed`` by default, or a
    caller's own exception taking the same message, ``field`` and ``code`` (an import's line error)."""
    given = identifiers_given(identifiers=identifiers)
    if not given:
        raise error(
            "A profile needs at least one identifier: email, phone, uuid or customId.",
            field="identifiers",
            code="identifier.missing",
        )
    return given


# --- the parts of a write ---------------------------------------------------------------------------


def _normalize_identifiers(raw: dict[str, Any]) -> dict[str, str | None]:
    clean: dict[str, str | None] = {}
    for kind, value in raw.items():
        if value is None:
            if kind == IdentifierKind.UUID:
                raise ValidationFailed("uuid cannot be removed; every profile keeps at least one.", field="uuid")
            clean[kind] = None
        else:
            clean[kind] = identifier_normalize(kind, value)
    return clean


def _field_rule(column: str) -> tuple[str, Any]:
    """How a native column is validated: ("choice", values), ("date", None), ("country", None) or ("text", max)."""
    field_ = Profile._meta.get_field(column)
    if field_.choices:
        return "choice", [choice for choice, _ in field_.choices]
    if field_.get_internal_type() == "DateField":
        return "date", None
    if column == "country_code":
        return "country", None
    if column == "avatar_url":
        return "url", None
    return "text", field_.max_length


_FIELD_RULES = {column: _field_rule(column) for column in EDITABLE_API_NAMES}


def _validate_fields(raw: dict[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for name, value in raw.items():
        rule = _FIELD_RULES.get(name)
        if rule is None:
            raise ValidationFailed(f"Unknown field '{name}'.", field=name, code="field.unknown")
        if value is None:
            clean[name] = DEFAULTS.get(name)
            continue
        api_name = EDITABLE_API_NAMES[name]
        if isinstance(value, str):
            value = value.strip()
            if not value:
                raise ValidationFailed(
                    f"{api_name} must not be an empty string; send null to clear it.",
                    field=api_name,
                    code="field.empty",
                )
        kind, arg = rule
        if kind == "text":
            if not isinstance(value, str):
                raise ValidationFailed(f"{api_name} must be a string.", field=api_name, code="field.type")
            if len(value) > arg:
                raise ValidationFailed(
                    f"{api_name} is longer than {arg} characters.", field=api_name, code="field.too_long"
                )
        else:
            value = _validate_special(kind, arg, api_name, value)
        clean[name] = value
    return clean


def _validate_special(kind: str, arg, api_name: str, value):
    if kind == "choice":
        if value not in arg:
            raise ValidationFailed(
                f"{api_name} must be one of {', '.join(arg)}; got {value!r}.", field=api_name, code="field.choice"
            )
        return value
    if kind == "date":
        if isinstance(value, str):
            try:
                value = date.fromisoformat(value) if _DATE_RE.fullmatch(value) else None
            except ValueError:
                value = None
        if not isinstance(value, date):
            raise ValidationFailed(f"{api_name} must be a date as YYYY-MM-DD.", field=api_name, code="field.date")
        if value > datetime.now(UTC).date() or value.year < 1900:
            raise ValidationFailed(
                f"{api_name} must be between 1900-01-01 and today.", field=api_name, code="field.date"
            )
        return value
    if kind == "url":
        if not isinstance(value, str):
            raise ValidationFailed(f"{api_name} must be a string.", field=api_name, code="field.type")
        return avatar_url_validate(value)
    # country
    value = value.upper() if isinstance(value, str) else value
    if value not in COUNTRY_CODES:
        raise ValidationFailed(
            f"countryCode must be an ISO 3166-1 alpha-2 code; got {value!r}.",
            field="countryCode",
            code="field.country",
        )
    return value


def _tags_clean(names) -> list[str]:
    if not isinstance(names, list | tuple):
        raise ValidationFailed("tags must be a list of tag names.", field="tags", code="field.type")
    clean: dict[str, str] = {}
    for position, name in enumerate(names):
        name = tag_name_clean(name=name, field=f"tags[{position}]")
        clean.setdefault(name.lower(), name)
    return list(clean.values())
