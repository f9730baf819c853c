"""The profiles' part in erasure and portability: the steps for the profile tables, and for the platform's tables
that keep copies of what a sender sent about a person (batch jobs, stored idempotent answers, the admin log)."""

from __future__ import annotations

import json
from typing import Any

from django.db import connection
from django.db.models import Q

from crm.models import IdempotencyRecord, Job
from profiles.fields import SNAPSHOT_COLUMNS
from profiles.models import (
    ClientIdAlias,
    Event,
    EventAction,
    Identifier,
    MergeRecord,
    Profile,
    ProfileCommerce,
    ProfileTag,
    Transaction,
)
from profiles.normalize import identifier_normalize
from profiles.privacy_registry import (
    ERASED,
    ErasureContext,
    ExportContext,
    register_erasure_exempt,
    register_erasure_step,
    register_export_exempt,
    register_export_step,
)
from profiles.selectors import profile_commerce


def _iso(value):
    return value.isoformat() if value is not None else None


# --- erasure ------------------------------------------------------------------------------------------------


def events_erase(ctx: ErasureContext) -> int:
    """The timeline (custom events, system events, notes) goes; so do copies of the person in other timelines:
    ``profile.merged`` / ``profile.unmerged`` events of merges that were undone, whose snapshot names them."""

    deleted, _ = Event.objects.filter(profile_id=ctx.profile.pk).delete()
    survivors = set(
        MergeRecord.objects.filter(merged_client_id__in=ctx.client_ids).values_list("survivor_client_id", flat=True)
    ) | set(
        MergeRecord.objects.filter(survivor_client_id__in=ctx.client_ids).values_list("merged_client_id", flat=True)
    )
    scrubbed = 0
    for event in Event.objects.filter(profile_id__in=survivors - set(ctx.client_ids), action__startswith="profile."):
        params, changed = json_scrub(event.params, ctx.values)
        if changed:
            event.params = params
            event.save(update_fields=["params"])
            scrubbed += 1
    return deleted + scrubbed


def orders_erase(ctx: ErasureContext) -> int:

    deleted, _ = Transaction.objects.filter(profile_id=ctx.profile.pk).delete()
    commerce, _ = ProfileCommerce.objects.filter(profile_id=ctx.profile.pk).delete()
    return deleted + commerce


def tags_erase(ctx: ErasureContext) -> int:

    return ProfileTag.objects.filter(profile_id=ctx.profile.pk).delete()[0]


def merges_erase(ctx: ErasureContext) -> int:
    """Merge records (their snapshots hold the merged-in profile's data) on either side, and the clientId aliases
    (the ids become tombstones instead)."""

    records, _ = MergeRecord.objects.filter(
        Q(survivor_client_id__in=ctx.client_ids) | Q(merged_client_id__in=ctx.client_ids)
    ).delete()
    aliases, _ = ClientIdAlias.objects.filter(profile_id=ctx.profile.pk).delete()
    return records + aliases


def jobs_erase(ctx: ErasureContext) -> int:
    """Batch jobs keep their items to be run again: an item naming the person becomes ``{"erased": true}``, and
    its error and warning entries lose their text."""

    if not ctx.values:
        return 0
    patterns = [f"%{value}%" for value in _needles(ctx)]
    candidates = Job.objects.extra(
        where=["(payload::text ILIKE ANY(%s) OR errors::text ILIKE ANY(%s) OR warnings::text ILIKE ANY(%s))"],
        params=[patterns, patterns, patterns],
    )
    touched = 0
    for job in candidates:
        erased_items = set()
        payload = list(job.payload) if isinstance(job.payload, list) else job.payload
        if isinstance(payload, list):
            for index, item in enumerate(payload):
                if _item_names(item, ctx):
                    payload[index] = {"erased": True}
                    erased_items.add(index)
        payload, _ = json_scrub(payload, _needles(ctx))
        errors, _ = json_scrub([_drop_text(e, erased_items) for e in job.errors], _needles(ctx))
        warnings, _ = json_scrub([_drop_text(w, erased_items) for w in job.warnings], _needles(ctx))
        job.payload, job.errors, job.warnings = payload, errors, warnings
        job.save(update_fields=["payload", "errors", "warnings"])
        touched += 1
    return touched


def _drop_text(entry, erased_items: set[int]):
    if isinstance(entry, dict) and entry.get("index") in erased_items:
        return {**entry, "message": ERASED}
    return entry


def _item_names(item: Any, ctx: ErasureContext) -> bool:
    """Whether a stored batch item names the person: by its identifiers, normalised as writes normalise them."""

    held = set(ctx.identifiers)
    identifiers = item.get("identifiers") if isinstance(item, dict) else None
    if isinstance(identifiers, dict):
        for kind, value in identifiers.items():
            try:
                if (kind, identifier_normalize(kind, value)) in held:
                    return True
            except Exception:  # noqa: S112 - an item that never validated names nobody by that value
                continue
    text = json.dumps(item, ensure_ascii=False).lower()
    return any(needle.lower() in text for needle in _needles(ctx))


def idempotency_erase(ctx: ErasureContext) -> int:
    """Stored answers replayed for a repeated ``Idempotency-Key``: those naming the person are dropped (a repeat
    then runs again and meets the tombstone)."""

    needles = [n.encode() for n in _needles(ctx)]
    for client_id in ctx.client_ids:
        needles += [f'"clientId":{client_id}{end}'.encode() for end in (",", "}")]
        needles += [f'"clientId": {client_id}{end}'.encode() for end in (",", "}")]
    if not needles:
        return 0
    clause = " OR ".join(["position(%s::bytea in response_body) > 0"] * len(needles))
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {IdempotencyRecord._meta.db_table} WHERE response_body IS NOT NULL AND ({clause})",  # noqa: S608
            needles,
        )
        return cursor.rowcount


def admin_log_erase(ctx: ErasureContext) -> int:
    """The admin's change log names a profile by its ``str()`` (name and e-mail): kept as a bare clientId."""
    from django.contrib.admin.models import LogEntry
    from django.contrib.contenttypes.models import ContentType

    content_type = ContentType.objects.get_for_model(Profile)
    touched = 0
    for entry in LogEntry.objects.filter(content_type=content_type, object_id__in=[str(i) for i in ctx.client_ids]):
        entry.object_repr = f"erased profile {entry.object_id}"
        entry.change_message = "[]"
        entry.save(update_fields=["object_repr", "change_message"])
        touched += 1
    return touched


def profile_erase_row(ctx: ErasureContext) -> int:
    """Last: the identifiers and the profile row (native fields, custom attributes)."""

    identifiers, _ = Identifier.objects.filter(profile_id=ctx.profile.pk).delete()
    rows, _ = Profile.objects.filter(pk=ctx.profile.pk).delete()
    return identifiers + rows


def _needles(ctx: ErasureContext) -> list[str]:
    """Strings whose presence marks a copy of the person: identifier values, and the phone without its '+'."""
    needles = set(ctx.values)
    needles |= {value.lstrip("+") for kind, value in ctx.identifiers if kind == "phone"}
    profile = ctx.profile
    needles |= {v for v in (getattr(profile, "email", None), getattr(profile, "custom_id", None)) if v}
    return sorted(n for n in needles if len(n) >= 4)


def json_scrub(value: Any, needles: list[str]) -> tuple[Any, bool]:
    """``value`` with every string holding one of ``needles`` (case-insensitively) replaced by ``[erased]``."""
    lowered = [n.lower() for n in needles if n]
    if not lowered:
        return value, False

    def walk(node):
        if isinstance(node, str):
            if any(n in node.lower() for n in lowered):
                return ERASED, True
            return node, False
        if isinstance(node, list):
            out, changed = [], False
            for item in node:
                new, c = walk(item)
                out.append(new)
                changed |= c
            return out, changed
        if isinstance(node, dict):
            out, changed = {}, False
            for key, item in node.items():
                new, c = walk(item)
                out[key] = new
                changed |= c
            return out, changed
        return node, False

    return walk(value)


# --- export (portability) -------------------------------------------------------------------------------------


def profile_export_row(ctx: ExportContext) -> dict:

    profile = ctx.profile
    return {
        name: (_iso(getattr(profile, name)) if hasattr(getattr(profile, name), "isoformat") else getattr(profile, name))
        for name in SNAPSHOT_COLUMNS
        if name != "attributes"
    }


def identifiers_export(ctx: ExportContext) -> list[dict]:

    return [
        {"kind": i.kind, "value": i.value, "firstSeen": _iso(i.first_seen), "lastSeen": _iso(i.last_seen)}
        for i in Identifier.objects.filter(profile_id=ctx.profile.pk).order_by("kind", "first_seen", "id")
    ]


def attributes_export(ctx: ExportContext) -> dict:
    return dict(ctx.profile.attributes or {})


def tags_export(ctx: ExportContext) -> list[dict]:

    return [
        {"name": pt.tag.name, "addedAt": _iso(pt.created_at)}
        for pt in ProfileTag.objects.filter(profile_id=ctx.profile.pk).select_related("tag").order_by("tag__name")
    ]


def _event_data(e) -> dict:
    return {
        "action": e.action,
        "type": "system" if e.is_system else "custom",
        "label": e.label,
        "time": _iso(e.time),
        "params": e.params,
        "source": e.source,
        "actor": e.actor,
    }


def events_export(ctx: ExportContext) -> list[dict]:

    return [
        _event_data(e)
        for e in Event.objects.filter(profile_id=ctx.profile.pk)
        .exclude(action=EventAction.NOTE_ADDED)
        .order_by("time", "id")
        .iterator(chunk_size=2000)
    ]


def notes_export(ctx: ExportContext) -> list[dict]:

    return [
        {"text": e.params.get("text", e.label), "author": e.params.get("author", e.actor), "time": _iso(e.time)}
        for e in Event.objects.filter(profile_id=ctx.profile.pk, action=EventAction.NOTE_ADDED).order_by("time", "id")
    ]


def orders_export(ctx: ExportContext) -> dict:

    orders = [
        {
            "orderId": t.order_id,
            "value": str(t.value),
            "currency": t.currency,
            "status": t.status,
            "time": _iso(t.time),
            "items": t.items,
            "quantity": t.quantity,
            "metadata": t.metadata,
            "source": t.source,
        }
        for t in Transaction.objects.filter(profile_id=ctx.profile.pk).order_by("time", "id")
    ]
    commerce = profile_commerce(profile_id=ctx.profile.pk)
    commerce["lastOrder"] = _iso(commerce["lastOrder"])
    return {"orders": orders, "figures": commerce}


def merges_export(ctx: ExportContext) -> list[dict]:

    return [
        {
            "mergedClientId": r.merged_client_id,
            "intoClientId": r.survivor_client_id,
            "at": _iso(r.created_at),
            "undoneAt": _iso(r.undone_at),
            "forced": r.forced,
            "source": r.source,
            "reason": r.reason,
            "mergedProfile": (r.snapshot or {}).get("profile"),
            "mergedIdentifiers": (r.snapshot or {}).get("identifiers"),
        }
        for r in MergeRecord.objects.filter(
            Q(survivor_client_id__in=ctx.client_ids) | Q(merged_client_id__in=ctx.client_ids)
        ).order_by("created_at", "id")
    ]


def register() -> None:
    register_erasure_step("events", erase=events_erase, models=["profiles.Event"], order=20)
    register_erasure_step(
        "orders", erase=orders_erase, models=["profiles.Transaction", "profiles.ProfileCommerce"], order=30
    )
    register_erasure_step("tags", erase=tags_erase, models=["profiles.ProfileTag"], order=40)
    register_erasure_step(
        "merges", erase=merges_erase, models=["profiles.MergeRecord", "profiles.ClientIdAlias"], order=50
    )
    register_erasure_step("jobs", erase=jobs_erase, models=["crm.Job"], order=60)
    register_erasure_step("idempotency", erase=idempotency_erase, models=["crm.IdempotencyRecord"], order=70)
    register_erasure_step("admin log", erase=admin_log_erase, models=["admin.LogEntry"], order=80)
    register_erasure_step(
        "profile", erase=profile_erase_row, models=["profiles.Profile", "profiles.Identifier"], order=1000
    )
    for label, why in {
        "profiles.Tag": "tag definitions; a profile's tags are ProfileTag rows",
        "django_tasks_database.DBTaskResult": "task arguments and results are ids and counts, never personal data",
        "crm.SystemSample": "the platform's own figures (queue depths, lags, disk use), no profile data",
        "profiles.AttributeDefinition": "attribute definitions, not values",
    }.items():
        register_erasure_exempt(label, why)

    register_export_step("profile", export=profile_export_row, models=["profiles.Profile"], order=0)
    register_export_step("identifiers", export=identifiers_export, models=["profiles.Identifier"], order=10)
    register_export_step("attributes", export=attributes_export, models=[], order=20)
    register_export_step("tags", export=tags_export, models=["profiles.ProfileTag"], order=30)
    register_export_step("events", export=events_export, models=["profiles.Event"], order=50)
    register_export_step("notes", export=notes_export, models=[], order=55)
    register_export_step(
        "orders", export=orders_export, models=["profiles.Transaction", "profiles.ProfileCommerce"], order=60
    )
    register_export_step(
        "merges", export=merges_export, models=["profiles.MergeRecord", "profiles.ClientIdAlias"], order=70
    )
    for label, why in {
        "profiles.Tag": "tag definitions; a profile's tags are exported by name",
        "django_tasks_database.DBTaskResult": "background task bookkeeping (ids and counts)",
        "crm.SystemSample": "the platform's own figures, not data about the person",
        "crm.Job": "batch jobs are the sender's submissions; their effect on the profile is exported",
        "crm.IdempotencyRecord": "stored answers to the sender's requests, replayed for 24 hours",
        "admin.LogEntry": "the staff's change log, not data about the person",
        "profiles.AttributeDefinition": "attribute definitions, not values",
    }.items():
        register_export_exempt(label, why)
