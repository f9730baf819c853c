"""Survivor: which profile a write lands on.

The profiles a write's identifiers name (after the UUID reset, within the limits) decide it: none, and the
write creates a profile; one, and it updates that one; several, and they merge into a survivor first. The
survivor is the recognized profile (one that is not anonymous), by priority of the identifier kind that names it
(``IDENTIFIER_PRIORITY``), else the owner of the highest-priority identifier; ties go to the oldest profile.
No queries: the owners and the locked profiles come from the caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings

from profiles.models import Profile
from profiles.services.identity.input import Pair


@dataclass
class Resolution:
    """What a write does: create a profile, update one, or merge several into a survivor first."""

    survivor_id: int | None  # None: create
    merged_ids: list[int] = field(default_factory=list)
    links: list[dict] = field(default_factory=list)  # which identifier named which profile


def resolve(*, owners: dict[Pair, int], profiles: dict[int, Profile]) -> Resolution:
    """Decide which profile a write lands on, from the owners of its identifiers that stay after the UUID reset
    (no queries)."""
    candidates = set(owners.values())
    links = [{"kind": k, "value": v, "clientId": pid} for (k, v), pid in sorted(owners.items())]
    if not candidates:
        return Resolution(survivor_id=None, links=links)
    if len(candidates) == 1:
        return Resolution(survivor_id=next(iter(candidates)), links=links)
    survivor = _survivor(owners, profiles, candidates)
    return Resolution(survivor_id=survivor, merged_ids=sorted(candidates - {survivor}), links=links)


def _survivor(owners: dict[Pair, int], profiles: dict[int, Profile], candidates: set[int]) -> int:
    recognized = {pid for pid in candidates if not profiles[pid].anonymous}
    pool = recognized or candidates
    for kind in settings.IDENTIFIER_PRIORITY:
        pids = {pid for (k, _), pid in owners.items() if k == kind and pid in pool}
        if pids:
            return min(pids, key=lambda pid: (profiles[pid].created_at, pid))
    return min(pool, key=lambda pid: (profiles[pid].created_at, pid))
