"""Limits: how many values of a kind one profile may hold, and the merge they refuse.

``IDENTIFIER_LIMITS`` gives, per kind, the most values one profile may hold (e-mail and customId 1 by default,
phone and uuid unlimited); ``identifier_limit`` answers for one kind. When a write's identifiers name several
profiles (after the UUID reset), ``identifier_limits_check`` refuses the merge that would give the merged
profile more values of a limited kind than the limit, by adding values the other side does not hold: a
``Conflict`` naming the profiles and the clashing values. A profile that already holds more (after a forced
merge) keeps them. No queries: the values each profile holds come from the caller.

The other rules that depend on a kind being limited read the same setting where they decide: the UUID reset
(``uuid_reset``: a uuid follows the write when its profile holds another value of a limited kind) and the
diff (``diff``: a new value of a limited kind replaces the profile's main one).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings

from crm.errors import Conflict


def identifier_limit(*, kind: str) -> int | None:
    """The most values of ``kind`` one profile may hold (None: unlimited)."""
    return settings.IDENTIFIER_LIMITS.get(kind)


def identifier_limits_check(*, held: dict[int, dict[str, set[str]]], profile_ids: Iterable[int]) -> None:
    """Raise ``Conflict`` when merging ``profile_ids`` would push the values of a limited kind over its limit
    (nothing to check for fewer than two profiles)."""
    clash = _clash(held, profile_ids)
    if clash is None:
        return
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
