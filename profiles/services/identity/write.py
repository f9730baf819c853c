"""Write: one profile write, through each identity rule once, in a transaction run again when it lost a race.

Every surface (API, admin, import, commands) writes one profile through ``profile_upsert`` or ``profile_update``
(the batch, ``profiles.services.batch``, through ``resolve_and_write`` for the items it cannot settle in memory).
Reads by identifier are ``profiles.selectors.profile_lookup``. The walk of ``profile_upsert``:

1. ``input.input_clean`` (with ``require_identifiers``): the write, cleaned (one query reads the agreements when
   it sends agreements or attributes).
2. ``with_retries`` opens the transaction (again when it lost a race) and runs ``resolve_and_write``: the owners
   of the write's identifiers (``selectors.identifier_owners``; an erased uuid is Gone), none of them → create
   (4–6); else the owners locked in id order, checked unchanged, and the values they hold read
   (``selectors.identifiers_held``).
3. ``uuid_reset.uuid_resets`` → ``limits.identifier_limits_check`` → ``survivor.resolve``: the uuids that
   leave their profile (their rows deleted here), the merge the limits refuse (a Conflict), the profile the
   write lands on (none: create); the others are merged into it (``merge.profile_merge``).
4. ``diff.profile_diff`` (the profile written to, against the identifiers it now holds) or ``diff.profile_new``
   (a new profile, inserted): what the write changes; the identifiers it releases are deleted.
5. ``claims.identifiers_claim``: the identifiers the profile takes (a lost race is a ``Retry``: back to 2).
6. The write's agreements and tags, the changed profile saved, then the profile signals (the agreements' and
   tags' signals held until after them).

``profile_update`` (a known profile) walks 1 (without ``require_identifiers``), then refuses identifiers other
profiles own, locks the profile, and goes on at 4.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, OperationalError, transaction

from consents.models import ConsentStatus
from consents.services import ConsentItem, consents_set_many
from crm.errors import Conflict
from profiles import signals
from profiles.models import Identifier, IdentifierKind, Profile
from profiles.selectors import identifier_owners, identifiers_held
from profiles.services.attributes import AttributeCatalog
from profiles.services.identity.claims import Retry, identifiers_claim
from profiles.services.identity.diff import profile_diff, profile_new
from profiles.services.identity.input import CleanInput, ProfileInput, input_clean
from profiles.services.identity.limits import identifier_limits_check
from profiles.services.identity.survivor import resolve
from profiles.services.identity.uuid_reset import uuid_resets
from profiles.services.merge import profile_merge
from profiles.services.tags import tags_put
from profiles.tombstones import pairs_check, profile_missing

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 12
# Lost races: a unique value taken, a row deleted under a foreign key (a concurrent merge), serialization
# failures and deadlocks.
RETRY_SQLSTATES = {"23505", "23503", "40001", "40P01"}


@dataclass
class UpsertResult:
    profile: Profile
    created: bool
    changes: dict[str, tuple[Any, Any]]
    merged_client_ids: list[int] = field(default_factory=list)
    warnings: list[dict] = field(default_factory=list)  # {code, message, field}: parts not applied
    tagged: bool = False  # a tag of the write was new on the profile


def profile_upsert(*, data: ProfileInput, source: str, actor: str = "") -> UpsertResult:
    """Create a profile, or update the one its identifiers name, merging where they name several
    (the identity rules: UUID reset, identifier limits, survivor by priority)."""
    catalog = AttributeCatalog.load()
    clean = input_clean(data=data, catalog=catalog, require_identifiers=True)
    return with_retries(fn=lambda: resolve_and_write(clean=clean, catalog=catalog, source=source, actor=actor))


def profile_update(*, profile: Profile, data: ProfileInput, source: str, actor: str = "") -> UpsertResult:
    """Update one known profile; an identifier in the body that another profile owns is a Conflict."""
    catalog = AttributeCatalog.load()
    clean = input_clean(data=data, catalog=catalog)

    def attempt() -> UpsertResult:
        held = identifier_owners(pairs=clean.pairs)
        pairs_check(clean.pairs, owned=held)
        owners = {pair: pid for pair, pid in held.items() if pid != profile.pk}
        if owners:
            raise _taken(owners, profile)
        try:
            locked = _lock(profile.pk)
        except Profile.DoesNotExist:
            raise profile_missing(profile.pk) from None  # Gone when an erasure won the race
        return _apply(locked, clean, catalog, source=source, actor=actor)

    return with_retries(fn=attempt)


def resolve_and_write(*, clean: CleanInput, catalog: AttributeCatalog, source: str, actor: str) -> UpsertResult:
    """One validated write, inside the caller's transaction: UUID reset, limits, survivor (merging the others
    into it), then the diff and the claims."""
    owners = identifier_owners(pairs=clean.pairs)
    pairs_check(clean.pairs, owned=owners)  # an erased uuid comes back to nobody (a query only for a new uuid)
    if not owners:
        return _create(clean, catalog, source=source, actor=actor)
    ids = set(owners.values())
    profiles = _lock_many(ids)
    if len(profiles) != len(ids):
        raise Retry  # one was merged or deleted since we read the identifiers
    if identifier_owners(pairs=owners) != owners:
        raise Retry  # an identifier moved between the read and the lock
    held = identifiers_held(profile_ids=ids)
    resets = uuid_resets(clean=clean, owners=owners, held=held)
    owners = {pair: pid for pair, pid in owners.items() if pair not in resets}
    identifier_limits_check(held=held, profile_ids=set(owners.values()))
    plan = resolve(owners=owners, profiles=profiles)
    if resets:
        Identifier.objects.filter(kind=IdentifierKind.UUID, value__in=[v for _, v in resets]).delete()
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


# --- the two ends of a write: a new profile, or the changes on an existing one ----------------------


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


# --- locks and the update's own refusal ---------------------------------------------------------------


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
