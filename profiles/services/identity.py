"""Identity: resolve a write's identifiers to a profile, create or update it, look profiles up, delete.

Every surface (API, admin, import, commands) writes profiles through ``profile_upsert`` or
``profile_update``; reads by identifier go through ``profile_lookup``.
"""

from __future__ import annotations

import logging
import random
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import phonenumbers
from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone

from consents.models import Agreement, ConsentStatus
from consents.services import agreements_parse, consent_set
from crm.errors import Conflict, NotFound, ValidationFailed
from profiles import signals
from profiles.models import Identifier, IdentifierKind, Profile, Sex
from profiles.services.attributes import AttributeCatalog
from profiles.services.merge import profile_merge
from profiles.services.normalize import avatar_url_validate, identifier_normalize

logger = logging.getLogger(__name__)

# Identifier kinds mirrored as a column on Profile (the profile's main value of that kind).
MAIN_COLUMNS = {
    IdentifierKind.EMAIL: "email",
    IdentifierKind.PHONE: "phone",
    IdentifierKind.CUSTOM_ID: "custom_id",
    IdentifierKind.UUID: "uuid",
}
# Editable native fields, by model name, with the API name used in error messages.
NATIVE_FIELDS = {
    "first_name": "firstName",
    "last_name": "lastName",
    "display_name": "displayName",
    "company": "company",
    "address": "address",
    "city": "city",
    "province": "province",
    "zip_code": "zipCode",
    "country_code": "countryCode",
    "birth_date": "birthDate",
    "sex": "sex",
    "avatar_url": "avatarUrl",
}
NATIVE_DEFAULTS = {"sex": Sex.NOT_SPECIFIED}
COUNTRY_CODES = frozenset(phonenumbers.SUPPORTED_REGIONS) - {"001"}
MAX_ATTEMPTS = 12
RETRY_SQLSTATES = {"23505", "40001", "40P01"}


@dataclass
class ProfileInput:
    """One profile write, in model terms. Keys not present are left unchanged; None resets or deletes."""

    identifiers: dict[str, Any] = field(default_factory=dict)  # kind -> raw value
    fields: dict[str, Any] = field(default_factory=dict)  # native field (model name) -> value
    attributes: dict[str, Any] = field(default_factory=dict)  # custom attribute name -> value
    agreements: dict[str, bool] = field(default_factory=dict)  # agreement key -> granted?


@dataclass
class UpsertResult:
    profile: Profile
    created: bool
    changes: dict[str, tuple[Any, Any]]
    merged_client_ids: list[int] = field(default_factory=list)


class _Retry(Exception):
    """Another transaction claimed an identifier between our read and our write: resolve again."""


# --- validation (no queries) ------------------------------------------------------------------


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


def _validate_fields(raw: dict[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for name, value in raw.items():
        api_name = NATIVE_FIELDS.get(name)
        if api_name is None:
            raise ValidationFailed(f"Unknown field '{name}'.", field=name, code="field.unknown")
        if value is None:
            clean[name] = NATIVE_DEFAULTS.get(name)
            continue
        if isinstance(value, str):
            value = value.strip()
            if not value:
                raise ValidationFailed(
                    f"{api_name} must not be an empty string; send null to clear it.",
                    field=api_name,
                    code="field.empty",
                )
        if name == "sex":
            if value not in Sex.values:
                raise ValidationFailed(
                    f"sex must be one of {', '.join(Sex.values)}; got {value!r}.", field="sex", code="field.choice"
                )
        elif name == "birth_date":
            if isinstance(value, str):
                try:
                    value = date.fromisoformat(value) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) else None
                except ValueError:
                    value = None
            if not isinstance(value, date):
                raise ValidationFailed("birthDate must be a date as YYYY-MM-DD.", field="birthDate", code="field.date")
            if value > timezone.now().date() or value.year < 1900:
                raise ValidationFailed(
                    "birthDate must be between 1900-01-01 and today.", field="birthDate", code="field.date"
                )
        elif name == "country_code":
            value = value.upper() if isinstance(value, str) else value
            if value not in COUNTRY_CODES:
                raise ValidationFailed(
                    f"countryCode must be an ISO 3166-1 alpha-2 code; got {value!r}.",
                    field="countryCode",
                    code="field.country",
                )
        elif not isinstance(value, str):
            raise ValidationFailed(f"{api_name} must be a string.", field=api_name, code="field.type")
        elif name == "avatar_url":
            value = avatar_url_validate(value)
        else:
            limit = Profile._meta.get_field(name).max_length
            if len(value) > limit:
                raise ValidationFailed(
                    f"{api_name} is longer than {limit} characters.", field=api_name, code="field.too_long"
                )
        clean[name] = value
    return clean


@dataclass
class _CleanInput:
    identifiers: dict[str, str | None]
    fields: dict[str, Any]
    attributes: dict[str, Any]
    agreements: list[tuple[Agreement, bool]]


def _clean(data: ProfileInput, catalog: AttributeCatalog, agreements: dict | None = None) -> _CleanInput:
    """Validate a write without touching the database (but for agreements, unless preloaded)."""
    # Custom agreements may come as attributes keys (seed 002): they leave the attributes here.
    pairs, attributes = agreements_parse(agreements=data.agreements, attributes=data.attributes, known=agreements)
    return _CleanInput(
        identifiers=_normalize_identifiers(data.identifiers),
        fields=_validate_fields(data.fields),
        attributes=catalog.validate(attributes) if attributes else {},
        agreements=pairs,
    )


def _set_agreements(profile: Profile, clean: _CleanInput, *, source: str, actor: str) -> None:
    for agreement, granted in clean.agreements:
        state = ConsentStatus.GRANTED if granted else ConsentStatus.DENIED
        consent_set(profile=profile, agreement=agreement, state=state, source=source, actor=actor)


# --- writes -----------------------------------------------------------------------------------


def _claim(profile_id: int, pairs: list[tuple[str, str]]) -> None:
    """Insert identifiers for a profile; a value another profile holds raises _Retry or Conflict."""
    if not pairs:
        return
    kinds, values = zip(*pairs, strict=True)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO profiles_identifier (profile_id, kind, value, first_seen, last_seen)
            SELECT %s, k, v, now(), now() FROM unnest(%s::text[], %s::text[]) AS t(k, v)
            ON CONFLICT (kind, value) DO NOTHING
            RETURNING kind, value
            """,
            [profile_id, list(kinds), list(values)],
        )
        claimed = set(cursor.fetchall())
    lost = [pair for pair in pairs if pair not in claimed]
    if lost:
        owners = dict(
            ((i.kind, i.value), i.profile_id)
            for i in Identifier.objects.filter(kind__in=[k for k, _ in lost], value__in=[v for _, v in lost])
        )
        if any(owners.get(pair) not in (None, profile_id) for pair in lost):
            raise _Retry
        # Already ours (sent twice): nothing to do.


def _owners(identifiers: dict[str, str | None]) -> dict[tuple[str, str], int]:
    pairs = [(k, v) for k, v in identifiers.items() if v is not None]
    if not pairs:
        return {}
    rows = Identifier.objects.filter(kind__in=[k for k, _ in pairs], value__in=[v for _, v in pairs]).values_list(
        "kind", "value", "profile_id"
    )
    wanted = set(pairs)
    return {(k, v): pid for k, v, pid in rows if (k, v) in wanted}


def _conflict(owners: dict[tuple[str, str], int], profile_ids: set[int]) -> Conflict:
    described = "; ".join(f"{kind} '{value}' → clientId {pid}" for (kind, value), pid in sorted(owners.items()))
    ids = sorted(profile_ids)
    return Conflict(
        f"The identifiers belong to different profiles ({described}); they are not merged automatically.",
        field="identifiers",
        code="identity.conflict",
        clientIds=ids,
    )


def _placeholder_first_name(email: str | None) -> str | None:
    if not email:
        return None
    token = re.split(r"[._+\-]", email.split("@", 1)[0])[0]
    return token[:1].upper() + token[1:].lower() if token else None


def _with_retries(fn):
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            with transaction.atomic():
                return fn()
        except (_Retry, IntegrityError, OperationalError) as exc:
            # Retry lost races only: unique violations, serialization failures and deadlocks.
            if not isinstance(exc, _Retry) and getattr(exc.__cause__, "sqlstate", None) not in RETRY_SQLSTATES:
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


def _new_profile(clean: _CleanInput) -> tuple[Profile, list[tuple[str, str]]]:
    """An unsaved profile built from a write, and the identifiers it will own (a uuid is generated if none)."""
    identifiers = {k: v for k, v in clean.identifiers.items() if v is not None}
    if IdentifierKind.UUID not in identifiers:
        identifiers[IdentifierKind.UUID] = str(uuid.uuid4())
    fields = dict(clean.fields)
    if "first_name" not in fields:
        fields["first_name"] = _placeholder_first_name(identifiers.get(IdentifierKind.EMAIL))
    now = timezone.now()
    profile = Profile(
        **{MAIN_COLUMNS[k]: v for k, v in identifiers.items()},
        **fields,
        attributes={k: v for k, v in clean.attributes.items() if v is not None},
        correlation_id=secrets.token_urlsafe(16),
        last_activity_date=now,
        created_at=now,
        updated_at=now,
    )
    return profile, list(identifiers.items())


def _create(clean: _CleanInput, catalog: AttributeCatalog, *, source: str, actor: str) -> UpsertResult:
    profile, identifiers = _new_profile(clean)
    catalog.save_pending(created_by=actor)
    profile.save(force_insert=True)
    _claim(profile.pk, identifiers)
    _set_agreements(profile, clean, source=source, actor=actor)
    signals.profile_created.send(sender=Profile, profiles=[profile], source=source, actor=actor)
    return UpsertResult(profile=profile, created=True, changes={})


@dataclass
class Diff:
    """What one write changes on one profile: (old, new) by API name, identifiers to claim and release."""

    changes: dict[str, tuple[Any, Any]]
    claim: list[tuple[str, str]]
    release: list[tuple[str, str]]


def _diff(profile: Profile, clean: _CleanInput, owns) -> Diff:
    """Apply a validated write to a profile in memory (no queries; ``owns(kind, value)`` answers
    whether the profile already holds an identifier) and say what changed."""
    changes: dict[str, tuple[Any, Any]] = {}
    claim: list[tuple[str, str]] = []
    release: list[tuple[str, str]] = []
    for kind, value in clean.identifiers.items():
        column = MAIN_COLUMNS[kind]
        current = getattr(profile, column)
        if kind == IdentifierKind.UUID:
            # A profile owns many uuids; the main one stays, a new one is added.
            if value != current and not owns(kind, value):
                claim.append((kind, value))
            continue
        if value == current:
            continue
        if value is not None and owns(kind, value):
            continue  # a secondary identifier (from a merge) names this profile; it does not replace the main one
        if current is not None:
            release.append((kind, current))
        if value is not None:
            claim.append((kind, value))
        setattr(profile, column, value)
        changes[kind] = (current, value)
    for name, value in clean.fields.items():
        current = getattr(profile, name)
        if current != value:
            setattr(profile, name, value)
            changes[NATIVE_FIELDS[name]] = (_jsonable(current), _jsonable(value))
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


def _apply(profile: Profile, clean: _CleanInput, catalog: AttributeCatalog, *, source: str, actor: str) -> UpsertResult:
    """Apply a validated change set to a locked profile; return what changed (old, new) by API name."""
    was_anonymous = profile.anonymous

    def owns(kind, value):
        return Identifier.objects.filter(profile=profile, kind=kind, value=value).exists()

    diff = _diff(profile, clean, owns)
    catalog.save_pending(created_by=actor)
    for kind, value in diff.release:
        Identifier.objects.filter(profile=profile, kind=kind, value=value).delete()
    _claim(profile.pk, diff.claim)
    _set_agreements(profile, clean, source=source, actor=actor)
    if diff.changes:
        profile.save()
        signals.profile_changed.send(sender=Profile, changes=[(profile.pk, diff.changes)], source=source, actor=actor)
        if was_anonymous and not profile.anonymous:
            signals.profile_identified.send(sender=Profile, profiles=[profile], source=source, actor=actor)
    return UpsertResult(profile=profile, created=False, changes=diff.changes)


def _jsonable(value):
    return value.isoformat() if isinstance(value, date) else value


def _lock(profile_id: int) -> Profile:
    return Profile.objects.select_for_update().get(pk=profile_id)


def profile_upsert(*, data: ProfileInput, source: str, actor: str = "") -> UpsertResult:
    """Create a profile, or update the one its identifiers name, merging where they name several.

    Resolution (F5): no identifier known → create; one profile → update it and attach the new
    identifiers; several → merge them into a survivor (the one recognized profile, else the owner
    of the highest-priority identifier, ties to the oldest). Two recognized profiles are never
    merged automatically: that is a ``Conflict`` naming both. A uuid owned by a recognized profile
    that arrives with another e-mail or customId moves to the profile those name ("UUID reset").
    """
    catalog = AttributeCatalog.load()
    clean = _clean(data, catalog)
    if not any(v is not None for v in clean.identifiers.values()):
        raise ValidationFailed(
            "A profile needs at least one identifier: email, phone, uuid or customId.",
            field="identifiers",
            code="identifier.missing",
        )
    return _with_retries(lambda: _resolve_and_write(clean, catalog, source=source, actor=actor))


def _resolve_and_write(clean: _CleanInput, catalog: AttributeCatalog, *, source: str, actor: str) -> UpsertResult:
    owners = _owners(clean.identifiers)
    if not owners:
        return _create(clean, catalog, source=source, actor=actor)
    profiles = _lock_many(set(owners.values()))
    if len(profiles) != len(set(owners.values())):
        raise _Retry  # one was merged or deleted since we read the identifiers
    reset = _uuid_resets(clean, owners, profiles)
    for pair in reset:
        del owners[pair]
    if reset:
        Identifier.objects.filter(kind=IdentifierKind.UUID, value__in=[v for _, v in reset]).delete()
    candidates = set(owners.values())
    if not candidates:
        return _create(clean, catalog, source=source, actor=actor)
    merged_ids: list[int] = []
    if len(candidates) == 1:
        survivor = profiles[candidates.pop()]
    else:
        recognized = sorted(pid for pid in candidates if not profiles[pid].anonymous)
        if len(recognized) > 1:
            raise _conflict({pair: pid for pair, pid in owners.items() if pid in recognized}, set(recognized))
        survivor = profiles[recognized[0]] if recognized else _by_priority(owners, profiles)
        merged_ids = sorted(candidates - {survivor.pk})
        survivor = profile_merge(
            survivor=survivor, others=[profiles[pid] for pid in merged_ids], source=source, actor=actor
        )
    result = _apply(survivor, clean, catalog, source=source, actor=actor)
    result.merged_client_ids = merged_ids
    return result


def _lock_many(ids: set[int]) -> dict[int, Profile]:
    return {p.pk: p for p in Profile.objects.select_for_update().filter(pk__in=sorted(ids)).order_by("pk")}


def _uuid_resets(clean: _CleanInput, owners: dict, profiles: dict[int, Profile]) -> list[tuple[str, str]]:
    """Uuids of recognized profiles that this write says belong to someone else (a shared device)."""
    resets = []
    for (kind, value), pid in owners.items():
        if kind != IdentifierKind.UUID or profiles[pid].anonymous:
            continue
        for strong in (IdentifierKind.EMAIL, IdentifierKind.CUSTOM_ID):
            sent = clean.identifiers.get(strong)
            theirs = getattr(profiles[pid], MAIN_COLUMNS[strong])
            if sent and theirs and sent != theirs and owners.get((strong, sent)) != pid:
                resets.append((kind, value))
                break
    return resets


def _by_priority(owners: dict, profiles: dict[int, Profile]) -> Profile:
    for kind in settings.IDENTIFIER_PRIORITY:
        pids = {pid for (k, _), pid in owners.items() if k == kind}
        if pids:
            return min((profiles[pid] for pid in pids), key=lambda p: (p.created_at, p.pk))
    raise AssertionError("owners is never empty here")


def profile_update(*, profile: Profile, data: ProfileInput, source: str, actor: str = "") -> UpsertResult:
    """Update one known profile; an identifier in the body that another profile owns is a Conflict."""
    catalog = AttributeCatalog.load()
    clean = _clean(data, catalog)

    def attempt() -> UpsertResult:
        owners = {pair: pid for pair, pid in _owners(clean.identifiers).items() if pid != profile.pk}
        if owners:
            raise _conflict(owners, {profile.pk, *owners.values()})
        try:
            locked = _lock(profile.pk)
        except Profile.DoesNotExist:
            raise NotFound(f"Profile {profile.pk} does not exist.", field="clientId") from None
        return _apply(locked, clean, catalog, source=source, actor=actor)

    return _with_retries(attempt)


def profile_lookup(*, kind: str, value) -> Profile:
    """The profile an identifier (or ``clientId``) names, or NotFound naming it."""
    if kind == "clientId":
        try:
            client_id = int(value)
        except (TypeError, ValueError):
            raise ValidationFailed(f"clientId must be a number; got {value!r}.", field="clientId") from None
        profile = Profile.objects.filter(pk=client_id).first()
        if profile is None:  # merged into another: an old clientId keeps resolving to its survivor
            profile = Profile.objects.filter(aliases__old_client_id=client_id).first()
    else:
        normalized = identifier_normalize(kind, value)
        profile = Profile.objects.filter(identifiers__kind=kind, identifiers__value=normalized).first()
    if profile is None:
        raise NotFound(f"No profile with {kind} '{value}'.", field=kind, code="profile.not_found")
    return profile


def profile_delete(*, profile: Profile, source: str, actor: str = "") -> None:
    """Delete a profile with its identifiers."""
    with transaction.atomic():
        snapshot = {"clientId": profile.pk, "email": profile.email, "customId": profile.custom_id, "uuid": profile.uuid}
        deleted, _ = Profile.objects.filter(pk=profile.pk).delete()
        if not deleted:
            raise NotFound(f"Profile {profile.pk} does not exist.", field="clientId", code="profile.not_found")
        signals.profile_deleted.send(sender=Profile, snapshots=[snapshot], source=source, actor=actor)
