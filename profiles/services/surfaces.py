"""Profile writes with the rules the vendor surfaces need beyond a plain upsert (ExpertSender, Capillary).

Composes the identity, batch and consent services; adds no rule of its own about profiles:
- ``WriteMode.ADD``: the write must create a profile; an identifier that already names one is a
  ``Conflict`` (``profile.exists``).
- ``WriteMode.UPDATE``: the profile named by ``match_kind`` must exist (``NotFound``,
  ``profile.not_found``); other identifiers owned by other profiles are a ``Conflict`` (no merge).
- ``WriteMode.UPSERT``: ``profile_upsert`` / ``profiles_upsert_many`` (identity resolution).
- ``change_identifiers=False``: identifiers that would replace a matched profile's e-mail, phone
  or customId are left out of the write and reported as warnings (Capillary's ``skipChangeIdentifier``).
- Consent states beyond granted/denied (awaiting confirmation, with ``force``) go to ``consent_set``.

Each item is all-or-nothing; one failed item never affects the others. Plain upserts run through
the set-based batch service; the others one by one, in request order.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

from django.db import OperationalError, transaction

from consents.context import RequestMeta
from consents.models import Agreement, ConsentStatus
from consents.services import consent_set
from crm.errors import Conflict, DomainError, ValidationFailed
from crm.lock_waits import Busy, is_lock_timeout
from profiles.fields import IDENTIFIER_COLUMNS
from profiles.models import IdentifierKind, Profile
from profiles.normalize import identifier_normalize
from profiles.selectors import identifier_owners, profile_lookup
from profiles.services.batch import profiles_upsert_many
from profiles.services.identity.input import ProfileInput
from profiles.services.identity.write import UpsertResult, profile_update
from profiles.services.identity.write import profile_upsert as _profile_upsert

# Kinds a profile holds one main value of; a different value replaces it (a uuid is added instead).
REPLACEABLE_KINDS = (IdentifierKind.EMAIL, IdentifierKind.PHONE, IdentifierKind.CUSTOM_ID)


class WriteMode(StrEnum):
    ADD = "add"
    UPDATE = "update"
    UPSERT = "upsert"


@dataclass
class ConsentInput:
    """One consent decision by agreement id; ``label`` names it in errors (e.g. ``consents[0]``)."""

    agreement_id: int
    state: str  # a ConsentStatus value
    label: str = ""


@dataclass
class WriteItem:
    data: ProfileInput
    consents: list[ConsentInput] = field(default_factory=list)
    force: bool = False  # send the double opt-in e-mail again for consents already awaiting confirmation


@dataclass
class WriteResult:
    index: int
    status: str  # created, updated, merged, unchanged, failed
    client_id: int | None = None
    error: dict | None = None  # DomainError.as_dict(): code, message, field, details
    warnings: list[dict] = field(default_factory=list)  # {code, message, field}


def profiles_write_many(
    *,
    items: list[WriteItem | DomainError],
    mode: WriteMode = WriteMode.UPSERT,
    match_kind: str | None = None,
    change_identifiers: bool = True,
    source: str,
    actor: str = "",
    request_meta: RequestMeta | None = None,
) -> list[WriteResult]:
    """Write many profiles in order; one result per item. Items given as a DomainError (a surface's
    shape check failed) come back failed at their index."""
    mode = WriteMode(mode)
    if mode is WriteMode.UPDATE and match_kind is None:
        raise ValueError("WriteMode.UPDATE needs a match_kind")
    results: list[WriteResult | None] = [None] * len(items)
    pending: list[tuple[int, WriteItem, list[tuple[Agreement, ConsentInput]]]] = []
    agreements = Agreement.objects.in_bulk(
        {c.agreement_id for item in items if isinstance(item, WriteItem) for c in item.consents}
    )
    for index, item in enumerate(items):
        if isinstance(item, DomainError):
            results[index] = WriteResult(index, "failed", error=item.as_dict())
            continue
        try:
            item, asked = _split_consents(item, agreements)
            if match_kind and item.data.identifiers.get(match_kind) in (None, ""):
                raise ValidationFailed(f"{match_kind} is required to match the profile.", field=match_kind,
                                       code="identifier.missing")  # fmt: skip
        except DomainError as error:
            results[index] = WriteResult(index, "failed", error=error.as_dict())
            continue
        pending.append((index, item, asked))

    warnings: dict[int, list[dict]] = {}
    if not change_identifiers:
        pending = _keep_identifiers(pending, warnings)

    run: list[tuple[int, WriteItem]] = []
    for index, item, asked in pending:
        if mode is WriteMode.UPSERT and not asked:
            run.append((index, item))
            continue
        _flush(run, results, source=source, actor=actor)
        run = []
        results[index] = _write_one(
            index, item, asked, mode, match_kind, source=source, actor=actor, request_meta=request_meta
        )
    _flush(run, results, source=source, actor=actor)
    for index, found in warnings.items():
        results[index].warnings = found  # type: ignore[union-attr]
    return results  # type: ignore[return-value]


def _split_consents(item: WriteItem, agreements: dict[int, Agreement]):
    """Granted/denied go with the profile write (``ProfileInput.agreements``); other states to ``consent_set``."""
    if not item.consents:
        return item, []
    decided = dict(item.data.agreements)
    asked: list[tuple[Agreement, ConsentInput]] = []
    for consent in item.consents:
        agreement = agreements.get(consent.agreement_id)
        where = consent.label or f"consents.{consent.agreement_id}"
        if agreement is None:
            raise ValidationFailed(f"Unknown consent id {consent.agreement_id}.", field=where, code="agreement.unknown")
        if not agreement.is_active:
            raise ValidationFailed(
                f"Consent {consent.agreement_id} ('{agreement.key}') is retired and takes no changes.",
                field=where,
                code="agreement.retired",
            )
        if consent.state == ConsentStatus.GRANTED:
            decided[agreement.key] = True
        elif consent.state == ConsentStatus.DENIED:
            decided[agreement.key] = False
        else:
            asked.append((agreement, consent))
    return replace(item, data=replace(item.data, agreements=decided)), asked


def _keep_identifiers(pending, warnings: dict[int, list[dict]]):
    """Drop identifiers that would replace the main e-mail, phone or customId of the one profile an item names."""
    normalized: dict[int, dict[str, str]] = {}
    pairs = set()
    for index, item, _ in pending:
        clean = {}
        for kind, value in item.data.identifiers.items():
            if value is None:
                continue
            try:
                clean[kind] = identifier_normalize(kind, value)
            except DomainError:
                continue  # the write itself reports it
            pairs.add((kind, clean[kind]))
        normalized[index] = clean
    if not pairs:
        return pending
    owned = identifier_owners(pairs=pairs)
    profiles = Profile.objects.in_bulk(set(owned.values()))
    kept = []
    for index, item, asked in pending:
        clean = normalized[index]
        owners = {owned[(k, v)] for k, v in clean.items() if (k, v) in owned}
        if len(owners) != 1:
            kept.append((index, item, asked))
            continue
        profile = profiles[owners.pop()]
        identifiers = dict(item.data.identifiers)
        for kind in REPLACEABLE_KINDS:
            value = clean.get(kind)
            current = getattr(profile, IDENTIFIER_COLUMNS[kind])
            if value is None or current is None or value == current or (kind, value) in owned:
                continue
            del identifiers[kind]
            warnings.setdefault(index, []).append(
                {
                    "code": "identifier.kept",
                    "field": kind,
                    "message": f"{kind} of clientId {profile.pk} stays '{current}'; '{value}' was not applied "
                    "because identifiers may not be changed by this request.",
                }
            )
        kept.append((index, replace(item, data=replace(item.data, identifiers=identifiers)), asked))
    return kept


def _flush(run: list[tuple[int, WriteItem]], results, *, source: str, actor: str) -> None:
    if not run:
        return
    try:
        outcome = profiles_upsert_many(items=[item.data for _, item in run], source=source, actor=actor)
    except OperationalError as error:
        if not is_lock_timeout(error):
            raise
        # The run is written set-based in one transaction, rolled back whole: each of its items says so (one wait,
        # not one per item, however many of them a long transaction holds).
        for index, _ in run:
            results[index] = WriteResult(index, "failed", error=Busy().as_dict())
        return
    for (index, _), result in zip(run, outcome, strict=True):
        results[index] = WriteResult(index, result.status, client_id=result.client_id, error=result.error)


def _owned(data: ProfileInput) -> list[tuple[str, str, int]]:
    pairs = {}
    for kind, value in data.identifiers.items():
        if value is not None:
            pairs[kind] = identifier_normalize(kind, value)
    return [(k, v, pid) for (k, v), pid in identifier_owners(pairs=pairs.items()).items()]


def _exists(kind: str, value: str, client_id: int) -> Conflict:
    return Conflict(
        f"A profile with {kind} '{value}' already exists (clientId {client_id}).",
        field=kind,
        code="profile.exists",
        clientIds=[client_id],
    )


def _write_one(
    index: int,
    item: WriteItem,
    asked: list[tuple[Agreement, ConsentInput]],
    mode: WriteMode,
    match_kind: str | None,
    *,
    source: str,
    actor: str,
    request_meta: RequestMeta | None,
) -> WriteResult:
    try:
        with transaction.atomic():
            result = _write_profile(item.data, mode, match_kind, source=source, actor=actor)
            consents_changed = False
            for agreement, consent in asked:
                try:
                    consents_changed |= consent_set(
                        profile=result.profile,
                        agreement=agreement,
                        state=consent.state,
                        source=source,
                        actor=actor,
                        request_meta=request_meta,
                        force=item.force,
                    )
                except DomainError as error:
                    if consent.label:
                        error.field = consent.label
                    raise
    except DomainError as error:
        return WriteResult(index, "failed", error=error.as_dict())
    except OperationalError as error:
        if not is_lock_timeout(error):
            raise
        return WriteResult(index, "failed", error=Busy().as_dict())  # this item only: the others go on
    if result.merged_client_ids:
        status = "merged"
    elif result.created:
        status = "created"
    else:
        status = "updated" if result.changes or consents_changed else "unchanged"
    return WriteResult(index, status, client_id=result.profile.pk)


def _write_profile(data: ProfileInput, mode: WriteMode, match_kind: str | None, *, source: str, actor: str):
    if mode is WriteMode.ADD:
        if owned := _owned(data):
            raise _exists(*owned[0])
        result = _profile_upsert(data=data, source=source, actor=actor)
        if not result.created:  # another request created it since our check: undo and say so
            raise _exists(match_kind or "identifier", data.identifiers.get(match_kind, ""), result.profile.pk)
        return result
    if mode is WriteMode.UPDATE:
        profile = profile_lookup(kind=match_kind, value=data.identifiers[match_kind])
        return profile_update(profile=profile, data=data, source=source, actor=actor)
    return _profile_upsert(data=data, source=source, actor=actor)


__all__ = ["ConsentInput", "UpsertResult", "WriteItem", "WriteMode", "WriteResult", "profiles_write_many"]
