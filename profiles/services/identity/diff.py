"""Diff: what a write changes on the profile it lands on.

``profile_new`` builds the profile a write creates (unsaved) and the identifiers it will own: a uuid is
generated when the write sends none, and an e-mail's first token stands in for a missing first name.
``profile_diff`` applies a write to an existing profile in memory and says what changed, as (old, new) by API
name, and which identifiers the profile claims and releases: a new value of a limited kind (``IDENTIFIER_LIMITS``:
e-mail, customId) replaces the main one and releases it; a new value of an unlimited kind is added (a new phone
becomes the main phone, a new uuid joins the others, the main uuid stays). Neither queries: whether the profile
already holds an identifier comes from the caller. The single write and the batch both take their changes
from here; the batch folds the diffs of several items for one profile into one.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.conf import settings
from django.utils import timezone

from profiles.fields import EDITABLE_API_NAMES, IDENTIFIER_COLUMNS, profile_build
from profiles.models import IdentifierKind, Profile
from profiles.services.identity.input import CleanInput, Pair


def profile_new(*, clean: CleanInput) -> tuple[Profile, list[Pair]]:
    """An unsaved profile built from a write, and the identifiers it will own (a uuid is generated if none)."""
    identifiers = {k: v for k, v in clean.identifiers.items() if v is not None}
    if IdentifierKind.UUID not in identifiers:
        identifiers[IdentifierKind.UUID] = str(uuid.uuid4())
    fields = dict(clean.fields)
    if "first_name" not in fields:
        fields["first_name"] = _placeholder_first_name(identifiers.get(IdentifierKind.EMAIL))
    now = timezone.now()
    profile = profile_build(
        **{IDENTIFIER_COLUMNS[k]: v for k, v in identifiers.items()},
        **fields,
        attributes={k: v for k, v in clean.attributes.items() if v is not None},
        correlation_id=secrets.token_urlsafe(16),
        last_activity_date=now,
        created_at=now,
        updated_at=now,
    )
    return profile, list(identifiers.items())


def _placeholder_first_name(email: str | None) -> str | None:
    if not email:
        return None
    token = re.split(r"[._+\-]", email.split("@", 1)[0])[0]
    return token[:1].upper() + token[1:].lower() if token else None


@dataclass
class Diff:
    """What one write changes on one profile: (old, new) by API name, identifiers to claim and release."""

    changes: dict[str, tuple[Any, Any]]
    claim: list[Pair]
    release: list[Pair]


def profile_diff(*, profile: Profile, clean: CleanInput, owns: Callable[[str, str], bool]) -> Diff:
    """Apply a validated write to a profile in memory and say what changed (no queries: ``owns(kind,
    value)`` answers whether the profile already holds an identifier).

    A new value of a kind limited to one value replaces the main one; a new value of an unlimited
    kind is added: a new phone becomes the main phone, a new uuid joins the others.
    """
    changes: dict[str, tuple[Any, Any]] = {}
    claim: list[Pair] = []
    release: list[Pair] = []
    for kind, value in clean.identifiers.items():
        column = IDENTIFIER_COLUMNS[kind]
        current = getattr(profile, column)
        if kind == IdentifierKind.UUID:
            # The main uuid stays, a new one is added.
            if value != current and not owns(kind, value):
                claim.append((kind, value))
            continue
        if value == current:
            continue
        if value is not None and owns(kind, value):
            continue  # a secondary identifier (from a merge) names this profile; it does not replace the main one
        if current is not None and (value is None or settings.IDENTIFIER_LIMITS.get(kind) is not None):
            release.append((kind, current))
        if value is not None:
            claim.append((kind, value))
        setattr(profile, column, value)
        changes[kind] = (current, value)
    for name, value in clean.fields.items():
        current = getattr(profile, name)
        if current != value:
            setattr(profile, name, value)
            changes[EDITABLE_API_NAMES[name]] = (_jsonable(current), _jsonable(value))
    if clean.attributes:
        attributes = dict(profile.attributes)
        for name, value in clean.attributes.items():
            current = attributes.get(name)
            if value is None:
                if name in attributes:
                    del attributes[name]
                    changes[f"attributes.{name}"] = (current, None)
            elif current != value or name not in attributes:
                attributes[name] = value
                changes[f"attributes.{name}"] = (current, value)
        profile.attributes = attributes
    return Diff(changes=changes, claim=claim, release=release)


def _jsonable(value):
    return value.isoformat() if isinstance(value, date) else value
