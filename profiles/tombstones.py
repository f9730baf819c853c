"""Erased ids: a clientId or uuid that named an erased profile never resolves to anyone again.

The domain asks here, and only after a lookup missed, so reads pay nothing for it. The privacy app keeps the
tombstones and answers: it registers its two look-ups with ``tombstones_register`` in its ``AppConfig.ready()``
(the domain owns the question, the feature that erases owns the records). Until one is registered, nothing counts
as erased.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

from crm.errors import Gone, NotFound

CLIENT_ID = "clientId"
UUID = "uuid"


class TombstoneLookups(NamedTuple):
    erased_client_ids: Callable[[set[int]], set[int]]  # which of these clientIds name erased profiles (one query)
    erased_uuids: Callable[[set[str]], set[str]]  # which of these normalised uuids did (one query)


_lookups = TombstoneLookups(erased_client_ids=lambda ids: set(), erased_uuids=lambda values: set())


def tombstones_register(*, erased_client_ids: Callable, erased_uuids: Callable) -> None:
    global _lookups
    _lookups = TombstoneLookups(erased_client_ids=erased_client_ids, erased_uuids=erased_uuids)


def erased_client_ids(ids: Iterable[int]) -> set[int]:
    """Which of these clientIds name erased profiles (one query, none for no ids)."""
    ids = {int(i) for i in ids}
    return _lookups.erased_client_ids(ids) if ids else set()


def erased_uuids(values: Iterable[str]) -> set[str]:
    """Which of these (normalised) uuids belonged to erased profiles (one query, none for no values)."""
    values = set(values)
    return _lookups.erased_uuids(values) if values else set()


def erased_error(kind: str, value, *, field: str | None = None) -> Gone:
    return Gone(
        f"The profile with {kind} '{value}' was erased; this {kind} names nobody any more.",
        field=field or kind,
        code="profile.erased",
    )


def tombstone_check(kind: str, value, *, field: str | None = None) -> None:
    """Raise Gone when ``kind``/``value`` (a clientId or a normalised uuid) names an erased profile."""
    if kind == CLIENT_ID:
        try:
            erased = erased_client_ids([int(value)])
        except (TypeError, ValueError):
            return
    elif kind == UUID:
        erased = erased_uuids([str(value)])
    else:
        return
    if erased:
        raise erased_error(kind, value, field=field)


def pairs_check(pairs: Iterable[tuple[str, str]], *, owned: Iterable[tuple[str, str]] = ()) -> None:
    """A write may not bring back an erased uuid: raise Gone for the first such uuid among ``pairs`` that no
    live profile owns (an owned one cannot be tombstoned). No query unless a uuid is new."""
    owned = set(owned)
    uuids = sorted(v for k, v in pairs if k == UUID and (k, v) not in owned)
    if uuids and (erased := erased_uuids(uuids)):
        raise erased_error(UUID, sorted(erased)[0])


def profile_missing(client_id: int, *, field: str = CLIENT_ID) -> NotFound:
    """The error for a profile that was there a moment ago and is not any more: Gone when it was erased (a write
    that raced the erasure), else NotFound. Asks the tombstones only on this miss."""
    try:
        tombstone_check(CLIENT_ID, client_id, field=field)
    except Gone as gone:
        return gone
    return NotFound(f"Profile {client_id} does not exist.", field=field, code="profile.not_found")
