"""Identity resolution: which profiles a write's identifiers name, and what the write does to them.

Every write path (single writes, batches, events, transactions, the three API surfaces) uses
this module's public names; nothing imports another module's private helpers.

The rules, in order:

1. Identifiers are normalised; a write names the profiles that own any of them
   (``identifier_owners``: the one owner lookup).
2. **UUID reset** (a shared device): a uuid owned by a profile that holds another value of a
   *limited* kind the write sends (another e-mail, another customId) leaves that profile and
   follows the write.
3. No profile named → create one. One → update it. Several → merge them into a survivor, but
   only while the merged profile stays within the **identifier limits** (``IDENTIFIER_LIMITS``:
   at most this many values per profile of a kind; e-mail and customId 1 by default, phone and
   uuid unlimited). A merge that would give one profile more values of a limited kind than the
   limit, by adding values the other side does not hold, is a ``Conflict`` naming the profiles
   and the clashing values. A profile that already holds more (after a forced merge) keeps them.
4. The survivor is the recognized profile (by priority of the identifier kind that names it,
   ``IDENTIFIER_PRIORITY``), else the owner of the highest-priority identifier; ties go to the
   oldest profile.
"""

from __future__ import annotations

import json
import logging
import random
import re
import secrets
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import phonenumbers
from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone

from consents.models import Agreement
from consents.services import agreements_parse, decision_time_check
from crm.errors import Conflict, ValidationFailed
from profiles.fields import DEFAULTS, EDITABLE_API_NAMES, IDENTIFIER_COLUMNS, profile_build
from profiles.models import IdentifierKind, Profile
from profiles.normalize import avatar_url_validate, identifier_normalize
from profiles.selectors import client_ids_resolve, identifier_owners
from profiles.services.attributes import AttributeCatalog
from profiles.services.tags import tag_name_clean

logger = logging.getLogger(__name__)

Pair = tuple[str, str]
COUNTRY_CODES = frozenset(phonenumbers.SUPPORTED_REGIONS) - {"001"}
MAX_ATTEMPTS = 12
# Lost races: a unique value taken, a row deleted under a foreign key (a concurrent merge), serialization
# failures and deadlocks.
RETRY_SQLSTATES = {"23505", "23503", "40001", "40P01"}
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")

__all__ = [
    "CleanInput",
    "Diff",
    "Resolution",
    "Retry",
    "client_ids_resolve",
    "identifier_limit",
    "identifier_owners",
    "identifiers_claim",
    "identifiers_given",
    "identifiers_held",
    "identifiers_required",
    "input_clean",
    "profile_diff",
    "profile_new",
    "resolve",
    "uuid_resets",
    "with_retries",
]


class Retry(Exception):
    """Another transaction claimed an identifier between our read and our write: resolve again."""


def identifier_limit(*, kind: str) -> int | None:
    """The most values of ``kind`` one profile may hold (None: unlimited)."""
    return settings.IDENTIFIER_LIMITS.get(kind)


# --- validation (no queries) ------------------------------------------------------------------


@dataclass
class CleanInput:
    """A validated write: normalised identifiers, native fields, attributes and agreement decisions."""

    identifiers: dict[str, str | None]
    fields: dict[str, Any]
    attributes: dict[str, Any]
    agreements: list[tuple[Agreement, bool]]
    agreements_decided_at: datetime | None = None  # when the person decided (None: now, applied whatever came before)
    tags: list[str] = field(default_factory=list)  # tag names to put on the profile

    def pairs(self) -> list[Pair]:
        return [(k, v) for k, v in self.identifiers.items() if v is not None]


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


def input_clean(*, data, catalog: AttributeCatalog, agreements: dict | None = None) -> CleanInput:
    """Validate a ``ProfileInput`` without touching the database (but for agreements, unless preloaded)."""
    # Custom agreements may come as attributes keys: they leave the attributes here.
    pairs, attributes = agreements_parse(agreements=data.agreements, attributes=data.attributes, known=agreements)
    return CleanInput(
        identifiers=_normalize_identifiers(data.identifiers),
        fields=_validate_fields(data.fields),
        attributes=catalog.validate(attributes) if attributes else {},
        agreements=pairs,
        agreements_decided_at=decision_time_check(value=data.agreements_decided_at, field="agreementsDecidedAt"),
        tags=_tags_clean(getattr(data, "tags", None) or []),
    )


def _tags_clean(names) -> list[str]:
    if not isinstance(names, list | tuple):
        raise ValidationFailed("tags must be a list of tag names.", field="tags", code="field.type")
    clean: dict[str, str] = {}
    for position, name in enumerate(names):
        name = tag_name_clean(name=name, field=f"tags[{position}]")
        clean.setdefault(name.lower(), name)
    return list(clean.values())


# --- reads ------------------------------------------------------------------------------------


def identifiers_held(*, profile_ids: Iterable[int]) -> dict[int, dict[str, set[str]]]:
    """Every identifier value of each profile, by kind, in one query."""
    held: dict[int, dict[str, set[str]]] = {pid: {} for pid in profile_ids}
    if not held:
        return held
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT profile_id, kind, value FROM profiles_identifier WHERE profile_id = ANY(%s)", [list(held)]
        )
        for pid, kind, value in cursor.fetchall():
            held[pid].setdefault(kind, set()).add(value)
    return held


# --- deciding -----------------------------------------------------------------------------------


def uuid_resets(*, clean: CleanInput, owners: dict[Pair, int], held: dict[int, dict[str, set[str]]]) -> list[Pair]:
    """Uuids that this write says belong to someone else: their profile holds another value of a
    limited kind (another e-mail, another customId) that the write sends (a shared device)."""
    resets = []
    limits = None
    for (kind, value), pid in owners.items():
        if kind != IdentifierKind.UUID:
            continue
        limits = limits or settings.IDENTIFIER_LIMITS
        for strong, sent in clean.identifiers.items():
            if sent is None or strong == IdentifierKind.UUID or limits.get(strong) is None:
                continue
            theirs = held.get(pid, {}).get(strong, set())
            if theirs and sent not in theirs and owners.get((strong, sent)) != pid:
                resets.append((kind, value))
                break
    return resets


@dataclass
class Resolution:
    """What a write does: create a profile, update one, or merge several into a survivor first."""

    survivor_id: int | None  # None: create
    merged_ids: list[int] = field(default_factory=list)
    resets: list[Pair] = field(default_factory=list)  # uuids that leave their profile
    links: list[dict] = field(default_factory=list)  # which identifier named which profile


def _clash(held: dict[int, dict[str, set[str]]], candidates: Iterable[int]) -> tuple[str, dict[int, list[str]]] | None:
    """The first limited kind whose values the merge of ``candidates`` would push over its limit."""
    for kind, limit in settings.IDENTIFIER_LIMITS.items():
        if limit is None:
            continue
        sides = {pid: sorted(held.get(pid, {}).get(kind, ())) for pid in candidates}
        sides = {pid: values for pid, values in sides.items() if values}
        # Within the limit, or one side already holds them all (after a forced merge): nothing is added.
        if len(sides) > 1 and sum(len(values) for values in sides.values()) > limit:
            return kind, sides
    return None


def _survivor(owners: dict[Pair, int], profiles: dict[int, Profile], candidates: set[int]) -> int:
    recognized = {pid for pid in candidates if not profiles[pid].anonymous}
    pool = recognized or candidates
    for kind in settings.IDENTIFIER_PRIORITY:
        pids = {pid for (k, _), pid in owners.items() if k == kind and pid in pool}
        if pids:
            return min(pids, key=lambda pid: (profiles[pid].created_at, pid))
    return min(pool, key=lambda pid: (profiles[pid].created_at, pid))


def resolve(
    *,
    clean: CleanInput,
    owners: dict[Pair, int],
    profiles: dict[int, Profile],
    held: dict[int, dict[str, set[str]]],
) -> Resolution:
    """Decide what a write does to the profiles its identifiers name (no queries; raises Conflict)."""
    resets = uuid_resets(clean=clean, owners=owners, held=held)
    live = {pair: pid for pair, pid in owners.items() if pair not in resets}
    candidates = set(live.values())
    links = [{"kind": k, "value": v, "clientId": pid} for (k, v), pid in sorted(live.items())]
    if not candidates:
        return Resolution(survivor_id=None, resets=resets, links=links)
    if len(candidates) == 1:
        return Resolution(survivor_id=next(iter(candidates)), resets=resets, links=links)
    clash = _clash(held, candidates)
    if clash is not None:
        kind, sides = clash
        described = "; ".join(f"clientId {pid} has {kind} {', '.join(map(repr, v))}" for pid, v in sides.items())
        raise Conflict(
            f"The identifiers name profiles that cannot be merged: {described}, and a profile may hold at most "
            f"{identifier_limit(kind=kind)} {kind}.",
            field=kind,
            code="identity.conflict",
            clientIds=sorted(sides),
            kind=kind,
            values={str(pid): values for pid, values in sides.items()},
        )
    survivor = _survivor(live, profiles, candidates)
    return Resolution(survivor_id=survivor, merged_ids=sorted(candidates - {survivor}), resets=resets, links=links)


# --- building and diffing profiles (no queries) ---------------------------------------------------


def _placeholder_first_name(email: str | None) -> str | None:
    if not email:
        return None
    token = re.split(r"[._+\-]", email.split("@", 1)[0])[0]
    return token[:1].upper() + token[1:].lower() if token else None


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


@dataclass
class Diff:
    """What one write changes on one profile: (old, new) by API name, identifiers to claim and release."""

    changes: dict[str, tuple[Any, Any]]
    claim: list[Pair]
    release: list[Pair]


def _jsonable(value):
    return value.isoformat() if isinstance(value, date) else value


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
        if current is not None and (value is None or identifier_limit(kind=kind) is not None):
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


# --- writing ------------------------------------------------------------------------------------


def identifiers_claim(*, profile_id: int, pairs: list[Pair]) -> None:
    """Insert identifiers for a profile; a value another profile took meanwhile raises Retry."""
    if not pairs:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO profiles_identifier (profile_id, kind, value, first_seen, last_seen)
            SELECT %s, t.k, t.v, now(), now() FROM json_to_recordset(%s::json) AS t(k text, v text)
            ON CONFLICT (kind, value) DO NOTHING
            RETURNING kind, value
            """,
            [profile_id, json.dumps([{"k": k, "v": v} for k, v in pairs])],
        )
        claimed = set(cursor.fetchall())
    lost = [pair for pair in pairs if pair not in claimed]
    if lost and any(pid != profile_id for pid in identifier_owners(pairs=lost).values()):
        raise Retry
    # Otherwise already ours (sent twice): nothing to do.


def with_retries(*, fn):
    """Run ``fn`` in a transaction, again when it lost a race (Retry, unique violation, serialization
    failure, deadlock), with jittered backoff; a Conflict when it keeps losing."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            with transaction.atomic():
                return fn()
        except (Retry, IntegrityError, OperationalError) as exc:
            if not isinstance(exc, Retry) and getattr(exc.__cause__, "sqlstate", None) not in RETRY_SQLSTATES:
                raise
            if attempt == MAX_ATTEMPTS:
                raise Conflict(
                    "The profile was changed by concurrent requests; try again.",
                    field="identifiers",
                    code="identity.busy",
                ) from exc
            logger.info("identity: retrying after %s (attempt %s)", type(exc).__name__, attempt)
            # Jittered backoff, so writers that collided do not collide again in lockstep.
            time.sleep(random.uniform(0, min(0.25, 0.005 * 2**attempt)))  # noqa: S311 - jitter, not secrecy
    raise AssertionError("unreachable")
