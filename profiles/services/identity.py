"""Identity: create or update the profile a write's identifiers name, merging where they name several.

Every surface (API, admin, import, commands) writes profiles through ``profile_upsert`` or
``profile_update``; the rules of who-is-who live in ``resolution``, reads by identifier are
``profiles.selectors.profile_lookup``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from consents.models import ConsentStatus
from consents.services import ConsentItem, consents_set_many
from crm.errors import Conflict
from profiles import signals
from profiles.models import Identifier, IdentifierKind, Profile
from profiles.selectors import identifier_owners
from profiles.services.attributes import AttributeCatalog
from profiles.services.merge import profile_merge
from profiles.services.resolution import (
    CleanInput,
    Retry,
    identifiers_claim,
    identifiers_held,
    identifiers_required,
    input_clean,
    profile_diff,
    profile_new,
    resolve,
    with_retries,
)
from profiles.services.tags import tags_put
from profiles.tombstones import pairs_check, profile_missing


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
class UpsertResult:
    profile: Profile
    created: bool
    changes: dict[str, tuple[Any, Any]]
    merged_client_ids: list[int] = field(default_factory=list)
    warnings: list[dict] = field(default_factory=list)  # {code, message, field}: parts not applied
    tagged: bool = False  # a tag of the write was new on the profile


def agreement_state(*, granted: bool) -> str:
    return ConsentStatus.GRANTED if granted else ConsentStatus.DENIED


def set_agreements(*, profile: Profile, clean: CleanInput, source: str, actor: str) -> list[dict]:
    """The write's decisions, in one ``consents_set_many`` call; returns its warnings (older decisions)."""
    if not clean.agreements:
        return []
    results = consents_set_many(
        items=[
            ConsentItem(profile.pk, agreement, agreement_state(granted=granted), decided_at=clean.agreements_decided_at)
            for agreement, granted in clean.agreements
        ],
        source=source,
        actor=actor,
    )
    for result in results:
        if result.error is not None:
            raise result.error
    return [result.warning for result in results if result.warning]


def put_tags(*, profile: Profile, clean: CleanInput, source: str, actor: str) -> bool:
    """The write's tags on the profile (set-based, created when missing); whether any was new."""
    if not clean.tags:
        return False
    return bool(tags_put(pairs=[(profile.pk, name) for name in clean.tags], source=source, actor=actor))


def _create(clean: CleanInput, catalog: AttributeCatalog, *, source: str, actor: str) -> UpsertResult:
    profile, identifiers = profile_new(clean=clean)
    catalog.save_pending(created_by=actor)
    profile.save(force_insert=True)
    identifiers_claim(profile_id=profile.pk, pairs=identifiers)
    with signals.signals_held() as waiting:  # profile_created's receivers see the write's consents and tags
        warnings = set_agreements(profile=profile, clean=clean, source=source, actor=actor)
        put_tags(profile=profile, clean=clean, source=source, actor=actor)
    signals.profile_created.send(sender=Profile, profiles=[profile], source=source, actor=actor)
    signals.signals_release(waiting)
    return UpsertResult(profile=profile, created=True, changes={}, warnings=warnings)


def _apply(profile: Profile, clean: CleanInput, catalog: AttributeCatalog, *, source: str, actor: str) -> UpsertResult:
    """Apply a validated change set to a locked profile; return what changed (old, new) by API name."""
    was_anonymous = profile.anonymous
    held = {(k, v) for k, values in identifiers_held(profile_ids=[profile.pk])[profile.pk].items() for v in values}
    diff = profile_diff(profile=profile, clean=clean, owns=lambda kind, value: (kind, value) in held)
    catalog.save_pending(created_by=actor)
    for kind, value in diff.release:
        Identifier.objects.filter(profile=profile, kind=kind, value=value).delete()
    identifiers_claim(profile_id=profile.pk, pairs=diff.claim)
    with signals.signals_held() as waiting:  # sent after the profile's own signals, as a batch sends them
        warnings = set_agreements(profile=profile, clean=clean, source=source, actor=actor)
        tagged = put_tags(profile=profile, clean=clean, source=source, actor=actor)
    if diff.changes:
        profile.save()
        signals.profile_changed.send(sender=Profile, changes=[(profile.pk, diff.changes)], source=source, actor=actor)
        if was_anonymous and not profile.anonymous:
            signals.profile_identified.send(sender=Profile, profiles=[profile], source=source, actor=actor)
    signals.signals_release(waiting)
    return UpsertResult(profile=profile, created=False, changes=diff.changes, warnings=warnings, tagged=tagged)


def profile_upsert(*, data: ProfileInput, source: str, actor: str = "") -> UpsertResult:
    """Create a profile, or update the one its identifiers name, merging where they name several
    (the rules are ``resolution``'s: identifier limits, UUID reset, survivor by priority)."""
    catalog = AttributeCatalog.load()
    clean = input_clean(data=data, catalog=catalog)
    identifiers_required(identifiers=clean.identifiers)
    return with_retries(fn=lambda: resolve_and_write(clean=clean, catalog=catalog, source=source, actor=actor))


def resolve_and_write(*, clean: CleanInput, catalog: AttributeCatalog, source: str, actor: str) -> UpsertResult:
    """One validated write, inside the caller's transaction: resolve, merge if needed, apply."""
    owners = identifier_owners(pairs=clean.pairs())
    pairs_check(clean.pairs(), owned=owners)  # an erased uuid comes back to nobody (a query only for a new uuid)
    if not owners:
        return _create(clean, catalog, source=source, actor=actor)
    ids = set(owners.values())
    profiles = _lock_many(ids)
    if len(profiles) != len(ids):
        raise Retry  # one was merged or deleted since we read the identifiers
    if identifier_owners(pairs=owners) != owners:
        raise Retry  # an identifier moved between the read and the lock
    plan = resolve(clean=clean, owners=owners, profiles=profiles, held=identifiers_held(profile_ids=ids))
    if plan.resets:
        Identifier.objects.filter(kind=IdentifierKind.UUID, value__in=[v for _, v in plan.resets]).delete()
    if plan.survivor_id is None:
        return _create(clean, catalog, source=source, actor=actor)
    survivor = profiles[plan.survivor_id]
    if plan.merged_ids:
        survivor = profile_merge(
            survivor=survivor,
            others=[profiles[pid] for pid in plan.merged_ids],
            source=source,
            actor=actor,
            reason={"links": plan.links},
        )
    result = _apply(survivor, clean, catalog, source=source, actor=actor)
    result.merged_client_ids = plan.merged_ids
    return result


def _lock(profile_id: int) -> Profile:
    return Profile.objects.select_for_update().get(pk=profile_id)


def _lock_many(ids: set[int]) -> dict[int, Profile]:
    return {p.pk: p for p in Profile.objects.select_for_update().filter(pk__in=sorted(ids)).order_by("pk")}


def _taken(owners: dict[tuple[str, str], int], profile: Profile) -> Conflict:
    described = "; ".join(f"{kind} '{value}' → clientId {pid}" for (kind, value), pid in sorted(owners.items()))
    return Conflict(
        f"The identifiers belong to other profiles ({described}); clientId {profile.pk} cannot take them.",
        field=sorted(owners)[0][0],
        code="identity.conflict",
        clientIds=sorted({profile.pk, *owners.values()}),
    )


def profile_update(*, profile: Profile, data: ProfileInput, source: str, actor: str = "") -> UpsertResult:
    """Update one known profile; an identifier in the body that another profile owns is a Conflict."""
    catalog = AttributeCatalog.load()
    clean = input_clean(data=data, catalog=catalog)

    def attempt() -> UpsertResult:
        held = identifier_owners(pairs=clean.pairs())
        pairs_check(clean.pairs(), owned=held)
        owners = {pair: pid for pair, pid in held.items() if pid != profile.pk}
        if owners:
            raise _taken(owners, profile)
        try:
            locked = _lock(profile.pk)
        except Profile.DoesNotExist:
            raise profile_missing(profile.pk) from None  # Gone when an erasure won the race
        return _apply(locked, clean, catalog, source=source, actor=actor)

    return with_retries(fn=attempt)
