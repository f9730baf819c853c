"""Reads of the tombstones: is this clientId or uuid one of an erased profile? Asked only after a lookup missed."""

from __future__ import annotations

from collections.abc import Iterable

from crm.errors import Gone, NotFound
from privacy.digests import identifier_digest
from privacy.models import Tombstone, TombstoneKind

TOMBSTONED_KINDS = frozenset({TombstoneKind.CLIENT_ID, TombstoneKind.UUID})


def tombstone_value(kind: str, value) -> str:
    return str(int(value)) if kind == TombstoneKind.CLIENT_ID else identifier_digest(kind, str(value))


def erased_client_ids(ids: Iterable[int]) -> set[int]:
    """Which of these clientIds name erased profiles (one query)."""
    ids = {int(i) for i in ids}
    if not ids:
        return set()
    values = Tombstone.objects.filter(kind=TombstoneKind.CLIENT_ID, value__in=[str(i) for i in ids])
    return {int(v) for v in values.values_list("value", flat=True)}


def erased_uuids(values: Iterable[str]) -> set[str]:
    """Which of these (normalised) uuids belonged to erased profiles (one query)."""
    by_digest = {identifier_digest(TombstoneKind.UUID, v): v for v in set(values)}
    if not by_digest:
        return set()
    found = Tombstone.objects.filter(kind=TombstoneKind.UUID, value__in=list(by_digest))
    return {by_digest[d] for d in found.values_list("value", flat=True)}


def erased_error(kind: str, value, *, field: str | None = None) -> Gone:
    return Gone(
        f"The profile with {kind} '{value}' was erased; this {kind} names nobody any more.",
        field=field or kind,
        code="profile.erased",
    )


def tombstone_check(kind: str, value, *, field: str | None = None) -> None:
    """Raise Gone when ``kind``/``value`` (a clientId or a normalised uuid) names an erased profile."""
    if kind not in TOMBSTONED_KINDS:
        return
    try:
        stored = tombstone_value(kind, value)
    except (TypeError, ValueError):
        return
    if Tombstone.objects.filter(kind=kind, value=stored).exists():
        raise erased_error(kind, value, field=field)


def pairs_check(pairs: Iterable[tuple[str, str]], *, owned: Iterable[tuple[str, str]] = ()) -> None:
    """A write may not bring back an erased uuid: raise Gone for the first such uuid among ``pairs`` that no
    live profile owns (an owned one cannot be tombstoned). No query unless a uuid is new."""
    owned = set(owned)
    uuids = sorted(v for k, v in pairs if k == TombstoneKind.UUID and (k, v) not in owned)
    if uuids and (erased := erased_uuids(uuids)):
        raise erased_error("uuid", sorted(erased)[0])


def profile_missing(client_id: int, *, field: str = "clientId") -> NotFound:
    """The error for a profile that was there a moment ago and is not any more: Gone when it was erased (a write
    that raced the erasure), else NotFound. Asks the tombstones only on this miss."""
    try:
        tombstone_check(TombstoneKind.CLIENT_ID, client_id, field=field)
    except Gone as gone:
        return gone
    return NotFound(f"Profile {client_id} does not exist.", field=field, code="profile.not_found")
