"""The merge step registry: every table that hangs off a profile plugs its own move into merges.

A merge (``profiles.services.merge``) moves everything from the merged-in profiles to the survivor, inside one
transaction, by calling each registered step with the keyword ``ctx``. A step's ``merge`` returns JSON-able data
saved in the merge snapshot; ``unmerge`` receives that data back to restore what it moved when the merge is
undone, and returns a list of human-readable notes about anything it could not restore.

Apps register their steps in ``AppConfig.ready()``::

    register_merge_step("tags", merge=tags_merge, unmerge=tags_unmerge, order=30)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class MergeContext:
    survivor: Any  # Profile, locked
    merged: Any  # one merged-in Profile, locked
    source: str
    actor: str


@dataclass
class UnmergeContext:
    survivor: Any  # Profile the merge went into
    restored: Any  # the re-created merged-in Profile (same clientId)
    data: Any  # what the step's merge returned
    source: str
    actor: str


@dataclass(frozen=True)
class MergeStep:
    name: str
    merge: Callable[[MergeContext], Any]
    unmerge: Callable[[UnmergeContext], list[str] | None]
    order: int = 100


@dataclass
class _Registry:
    steps: dict[str, MergeStep] = field(default_factory=dict)

    def register(self, step: MergeStep) -> None:
        self.steps[step.name] = step

    def ordered(self) -> list[MergeStep]:
        return sorted(self.steps.values(), key=lambda s: (s.order, s.name))


registry = _Registry()


def register_merge_step(
    name: str,
    *,
    merge: Callable[[MergeContext], Any],
    unmerge: Callable[[UnmergeContext], list[str] | None],
    order: int = 100,
) -> None:
    """Register (or replace) the step that moves one kind of row from a merged-in profile to the survivor."""
    registry.register(MergeStep(name=name, merge=merge, unmerge=unmerge, order=order))


def rows_move(model, *, from_profile_id: int, to_profile_id: int) -> list[int]:
    """Re-point every row of ``model`` from one profile to another; return the moved ids (for undo)."""
    from django.db import connection

    table = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET profile_id = %s WHERE profile_id = %s RETURNING id",  # noqa: S608 - a model's table
            [to_profile_id, from_profile_id],
        )
        return sorted(row[0] for row in cursor.fetchall())


def rows_move_back(model, *, ids: list[int], from_profile_id: int, to_profile_id: int) -> list[str]:
    """Undo ``rows_move`` for the rows still where the merge put them; a note for those that left."""
    from django.db import connection

    table = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET profile_id = %s WHERE profile_id = %s AND id = ANY(%s::bigint[])",  # noqa: S608
            [to_profile_id, from_profile_id, ids],
        )
        moved = cursor.rowcount
    if moved < len(ids):
        name = model._meta.verbose_name_plural
        return [f"{len(ids) - moved} of {len(ids)} {name} had left the survivor and stayed where they are."]
    return []
