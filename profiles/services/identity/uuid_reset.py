"""UUID reset: a shared device's uuid follows the person.

A uuid names a device (a browser, an app install) more than a person. When a write sends a uuid together with a
value of a *limited* kind (``IDENTIFIER_LIMITS``: an e-mail, a customId), and the profile that owns the uuid holds
another value of that kind, someone else is on that device now: the uuid leaves that profile and follows the
write, and no longer names that profile for this write. ``uuid_resets`` says which uuids leave (no queries: the
owners and the values each profile holds come from the caller); the single write deletes their rows before it
merges or writes, the batch sends such items the single-write way, and the tracker gives the browser a new uuid
instead.
"""

from __future__ import annotations

from django.conf import settings

from profiles.models import IdentifierKind
from profiles.services.identity.input import CleanInput, Pair


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
