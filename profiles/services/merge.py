"""Merging profiles into a survivor, and undoing a merge from its snapshot.

A merge moves the merged-in profile's identifiers to the survivor, fills the survivor's empty
fields and attributes from it (the survivor's values win), re-points old clientIds, runs every
registered merge step (tags, events, consents, … see ``merge_registry``), records a
``MergeRecord`` with a snapshot, and deletes the merged-in row. Undo restores the profile with the
same clientId from that snapshot and moves back what is still on the survivor.
"""

from __future__ import annotations

import uuid as uuid_lib
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db import transaction
from django.db.models.deletion import Collector
from django.utils import timezone

from crm.errors import NotFound, ValidationFailed
from crm.request_id import current_request_id
from profiles import signals
from profiles.fields import DEFAULTS, IDENTIFIER_COLUMNS, SNAPSHOT_COLUMNS, SYSTEM_COLUMNS
from profiles.merge_registry import MergeContext, UnmergeContext, registry
from profiles.models import ClientIdAlias, Identifier, MergeRecord, Profile
from profiles.selectors import client_ids_resolve, identifiers_held

# Profile columns kept in a snapshot (and restored on undo).
STATE_FIELDS = SNAPSHOT_COLUMNS
# Columns a merge may fill on the survivor when it has no value (identifier columns included).
FILLABLE_FIELDS = tuple(f for f in STATE_FIELDS if f not in {"uuid", *SYSTEM_COLUMNS})
# Identifier columns a merge may fill (the uuid column always keeps the survivor's), by column.
IDENTIFIER_KINDS = {column: kind for kind, column in IDENTIFIER_COLUMNS.items() if kind != "uuid"}


def write_context(*, source: str, actor: str, forced: bool = False) -> dict:
    """Which write caused a merge: its source, actor and request id."""

    return {"source": source, "actor": actor, "requestId": current_request_id() or None, "forced": forced}


def _jsonable(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _state(profile: Profile) -> dict[str, Any]:
    return {name: _jsonable(getattr(profile, name)) for name in STATE_FIELDS}


def _restore_value(name: str, value):
    if value is None:
        return None
    if name == "birth_date":
        return date.fromisoformat(value)
    if name in {"last_activity_date", "created_at"}:
        return datetime.fromisoformat(value)
    return value


def _is_empty(name: str, value) -> bool:
    return value is None or value == DEFAULTS.get(name)


def _lock(ids) -> dict[int, Profile]:
    return {p.pk: p for p in Profile.objects.select_for_update().filter(pk__in=sorted(set(ids))).order_by("pk")}


def _assert_nothing_left(profile: Profile) -> None:
    """Refuse to delete a merged-in profile that still owns rows no merge step moved (they would be lost)."""
    collector = Collector(using="default")
    collector.collect([profile])
    leftovers = [model._meta.label for model, objs in collector.data.items() if model is not Profile and objs]
    leftovers += [qs.model._meta.label for qs in collector.fast_deletes if qs.exists()]
    if leftovers:
        raise RuntimeError(
            f"Merging clientId {profile.pk} would delete rows of {', '.join(sorted(set(leftovers)))}: "
            "register a merge step for them (profiles.merge_registry)."
        )


def _merge_one(survivor: Profile, merged: Profile, *, source: str, actor: str, forced: bool, reason: dict) -> dict:
    state = _state(merged)
    identifiers = [
        {"kind": kind, "value": value, "firstSeen": first.isoformat(), "lastSeen": last.isoformat()}
        for kind, value, first, last in Identifier.objects.filter(profile=merged).values_list(
            "kind", "value", "first_seen", "last_seen"
        )
    ]
    filled: dict[str, Any] = {}
    for name in FILLABLE_FIELDS:
        theirs = getattr(merged, name)
        if _is_empty(name, getattr(survivor, name)) and not _is_empty(name, theirs):
            setattr(survivor, name, theirs)
            filled[name] = _jsonable(theirs)
    filled_attributes = [name for name in merged.attributes if name not in survivor.attributes]
    survivor.attributes = {**survivor.attributes, **{n: merged.attributes[n] for n in filled_attributes}}
    if merged.last_activity_date and (
        survivor.last_activity_date is None or merged.last_activity_date > survivor.last_activity_date
    ):
        survivor.last_activity_date = merged.last_activity_date

    Identifier.objects.filter(profile=merged).update(profile=survivor)
    repointed = list(ClientIdAlias.objects.filter(profile=merged).values_list("old_client_id", flat=True))
    ClientIdAlias.objects.filter(profile=merged).update(profile=survivor)
    ClientIdAlias.objects.create(old_client_id=merged.pk, profile=survivor)
    steps = {}
    for step in registry.ordered():
        steps[step.name] = step.merge(ctx=MergeContext(survivor=survivor, merged=merged, source=source, actor=actor))
    _assert_nothing_left(merged)
    Profile.objects.filter(pk=merged.pk).delete()
    snapshot = {
        "clientId": merged.pk,
        "profile": state,
        "identifiers": identifiers,
        "filled": filled,
        "filledAttributes": filled_attributes,
        "aliases": repointed,
        "steps": steps,
        "reason": reason,
    }
    MergeRecord.objects.create(
        survivor_client_id=survivor.pk,
        merged_client_id=merged.pk,
        snapshot=snapshot,
        forced=forced,
        reason=reason,
        source=source,
        actor=actor,
    )
    return snapshot


def profile_merge(
    *,
    survivor: Profile,
    others: list[Profile],
    source: str,
    actor: str = "",
    forced: bool = False,
    reason: dict | None = None,
):
    """Merge ``others`` into ``survivor`` in one transaction; returns the updated survivor.

    Callers decide who may be merged (identity resolution keeps to the identifier limits unless
    forced); this function only carries the merge out, locking the rows in id order. ``reason``
    says why (the identifiers that linked the profiles, or a forced merge's request) and is kept
    on the merge record and the ``profile.merged`` event, with the write that caused it.
    """
    reason = {**(reason or {"links": []}), "write": write_context(source=source, actor=actor, forced=forced)}
    other_ids = sorted({p.pk for p in others} - {survivor.pk})
    if not other_ids:
        raise ValidationFailed("Nothing to merge: name profiles other than the target.", field="fromClientIds")
    with transaction.atomic():
        locked = _lock([survivor.pk, *other_ids])
        missing = [pid for pid in [survivor.pk, *other_ids] if pid not in locked]
        if missing:
            raise NotFound(f"No profile with clientId {missing[0]}.", field="clientId", code="profile.not_found")
        target = locked[survivor.pk]
        snapshots = [
            _merge_one(target, locked[pid], source=source, actor=actor, forced=forced, reason=reason)
            for pid in other_ids
        ]
        target.save()
        signals.profiles_merged.send(sender=Profile, survivor=target, merged=snapshots, source=source, actor=actor)
    return target


def profile_merge_preview(*, survivor: Profile, others: list[Profile]) -> dict:
    """What ``profile_merge`` would do, without writing: the survivor, the identifiers that move, the
    fields filled from the merged-in profiles, the conflicting values and which one wins (the
    survivor's), the rows each table would move, and the limited identifier kinds a forced merge
    would put over their limit."""
    from profiles.fields import api_name
    from profiles.services.identity.limits import identifier_limit

    other_ids = sorted({p.pk for p in others} - {survivor.pk})
    if not other_ids:
        raise ValidationFailed("Nothing to merge: name profiles other than the target.", field="fromClientIds")
    by_id = {p.pk: p for p in others}
    state = {name: getattr(survivor, name) for name in FILLABLE_FIELDS}
    attributes = dict(survivor.attributes)
    filled: dict[str, dict] = {}
    conflicts: list[dict] = []
    for pid in other_ids:
        merged = by_id[pid]
        for name in FILLABLE_FIELDS:
            theirs, ours = getattr(merged, name), state[name]
            if _is_empty(name, theirs):
                continue
            if _is_empty(name, ours):
                state[name] = theirs
                filled[api_name(name)] = {"value": _jsonable(theirs), "fromClientId": pid}
            elif ours != theirs and name not in IDENTIFIER_KINDS:
                conflicts.append(
                    {
                        "field": api_name(name),
                        "kept": _jsonable(ours),
                        "dropped": _jsonable(theirs),
                        "fromClientId": pid,
                    }
                )
        for name, theirs in merged.attributes.items():
            if name not in attributes:
                attributes[name] = theirs
                filled[f"attributes.{name}"] = {"value": theirs, "fromClientId": pid}
            elif attributes[name] != theirs:
                conflicts.append(
                    {"field": f"attributes.{name}", "kept": attributes[name], "dropped": theirs, "fromClientId": pid}
                )
    held = identifiers_held(profile_ids=[survivor.pk, *other_ids])
    moved = [
        {"kind": kind, "value": value, "fromClientId": pid}
        for pid in other_ids
        for kind, values in sorted(held[pid].items())
        for value in sorted(values)
    ]
    over = {}
    for kind in {kind for values in held.values() for kind in values}:
        limit = identifier_limit(kind=kind)
        count = sum(len(values.get(kind, ())) for values in held.values())
        if limit is not None and count > limit:
            over[kind] = {"limit": limit, "values": count}
    rows = {}
    for relation in Profile._meta.related_objects:
        if relation.one_to_many or relation.one_to_one:
            model = relation.related_model
            count = model._default_manager.filter(**{f"{relation.field.name}__in": other_ids}).count()
            rows[model._meta.label] = count
    return {
        "survivor": survivor.pk,
        "merged": other_ids,
        "identifiersMoved": moved,
        "filled": filled,
        "conflicts": conflicts,
        "rows": dict(sorted(rows.items())),
        "overLimits": over,
    }


@dataclass
class UnmergeResult:
    survivor: Profile
    restored: Profile
    notes: list[str]


def profile_unmerge(*, profile: Profile, previous_client_id: int, source: str, actor: str = "") -> UnmergeResult:
    """Undo the merge of ``previous_client_id`` into ``profile`` from its snapshot.

    What later writes have changed stays as it is now; the notes say what could not be restored.
    """
    with transaction.atomic():
        record = (
            MergeRecord.objects.select_for_update()
            .filter(merged_client_id=previous_client_id, undone_at__isnull=True)
            .first()
        )
        holder = (
            client_ids_resolve(client_ids=[record.survivor_client_id]).get(record.survivor_client_id)
            if record
            else None
        )
        if record is None or holder != profile.pk:
            raise NotFound(
                f"clientId {previous_client_id} is not merged into clientId {profile.pk}.",
                field="previousClientId",
                code="merge.not_found",
            )
        survivor = _lock([profile.pk])[profile.pk]
        snapshot = record.snapshot
        state = {name: _restore_value(name, value) for name, value in snapshot["profile"].items()}
        notes: list[str] = []

        restored = Profile(pk=previous_client_id, **state)
        restored.save(force_insert=True)
        Profile.objects.filter(pk=restored.pk).update(created_at=state["created_at"])

        moved_back: set[tuple[str, str]] = set()
        for ident in snapshot["identifiers"]:
            kind, value = ident["kind"], ident["value"]
            owner = Identifier.objects.filter(kind=kind, value=value).values_list("profile_id", flat=True).first()
            if owner == survivor.pk:
                Identifier.objects.filter(kind=kind, value=value).update(profile=restored)
                moved_back.add((kind, value))
            elif owner is None:
                notes.append(f"{kind} {value} no longer exists; not restored.")
            else:
                notes.append(f"{kind} {value} now belongs to clientId {owner}; left there.")
        for column, kind in (*IDENTIFIER_KINDS.items(), ("uuid", "uuid")):
            value = getattr(restored, column)
            if value is not None and (kind, value) not in moved_back:
                replacement = (
                    Identifier.objects.filter(profile=restored, kind=kind).values_list("value", flat=True).first()
                )
                if replacement is None and kind == "uuid":
                    replacement = str(uuid_lib.uuid4())
                    Identifier.objects.create(profile=restored, kind="uuid", value=replacement)
                setattr(restored, column, replacement)

        for name, value in snapshot["filled"].items():
            current = _jsonable(getattr(survivor, name))
            if current == value:
                if name in IDENTIFIER_KINDS:
                    kind = IDENTIFIER_KINDS[name]
                    other = (
                        Identifier.objects.filter(profile=survivor, kind=kind).values_list("value", flat=True).first()
                    )
                    setattr(survivor, name, other)
                else:
                    setattr(survivor, name, DEFAULTS.get(name))
            else:
                notes.append(f"The survivor's {name} changed since the merge; kept.")
        attributes = dict(survivor.attributes)
        for name in snapshot["filledAttributes"]:
            if name in attributes and attributes[name] == snapshot["profile"]["attributes"].get(name):
                del attributes[name]
            elif name in attributes:
                notes.append(f"The survivor's attribute {name} changed since the merge; kept.")
        survivor.attributes = attributes

        ClientIdAlias.objects.filter(old_client_id=previous_client_id).delete()
        ClientIdAlias.objects.filter(old_client_id__in=snapshot["aliases"], profile=survivor).update(profile=restored)
        for step in reversed(registry.ordered()):
            if step.name in snapshot["steps"]:
                context = UnmergeContext(
                    survivor=survivor, restored=restored, data=snapshot["steps"][step.name], source=source, actor=actor
                )
                notes.extend(step.unmerge(ctx=context) or [])
        restored.save()
        survivor.save()
        record.undone_at = timezone.now()
        record.undo_notes = notes
        record.save(update_fields=["undone_at", "undo_notes"])
        signals.profile_unmerged.send(
            sender=Profile, survivor=survivor, restored=restored, notes=notes, source=source, actor=actor
        )
    return UnmergeResult(survivor=survivor, restored=restored, notes=notes)
