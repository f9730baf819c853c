"""Set-based batch upsert: a thousand profiles in a fixed number of queries.

The batch runs the single-write rules (``profiles.services.identity``) in memory, item after item, against the
profiles its identifiers name (read and locked in one query each), then writes the outcome with a handful of
set-based statements: ids from the sequence, new profiles by ``COPY``, identifier claims and releases through
``unnest``, changed profiles by one ``UPDATE … FROM unnest``. Items that need a merge, a UUID reset or a
conflict decision, and every later item that touches what those items touch, take the single-write path in
order (merges are rare and move rows of many tables). One bad item never sinks the others.

The walk of one item: ``identity.input.input_clean`` (in ``profiles_upsert_many``); in ``_fast_path``,
``identity.uuid_reset.uuid_resets`` (when it names a profile: a reset sends it the single-write way) and
``identity.diff.profile_diff`` or ``identity.diff.profile_new``; its identifiers claimed by ``_write``'s
statements. An item sent the single-write way then takes ``identity.write.resolve_and_write``'s walk.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from consents.models import Agreement
from consents.services import ConsentItem, consents_set_many
from crm.errors import DomainError
from crm.models import Job
from profiles import signals
from profiles.fields import ALL_COLUMNS, EDITABLE_BY_API_NAME, IDENTIFIER_COLUMNS, KEPT_ON_UPDATE, TEMPORAL_COLUMNS
from profiles.models import IdentifierKind, Profile
from profiles.selectors import identifier_owners, identifiers_held, profiles_versions
from profiles.services.attributes import AttributeCatalog
from profiles.services.identity.claims import Retry
from profiles.services.identity.diff import profile_diff, profile_new
from profiles.services.identity.input import CleanInput, ProfileInput, input_clean
from profiles.services.identity.uuid_reset import uuid_resets
from profiles.services.identity.write import agreement_state, resolve_and_write, with_retries
from profiles.services.tags import tags_put
from profiles.tombstones import erased_error, erased_uuids

logger = logging.getLogger(__name__)

# Profile columns written by the batch (the primary key first), from the model.
COLUMNS = ALL_COLUMNS
UPDATABLE = tuple(c for c in COLUMNS if c not in KEPT_ON_UPDATE)
SQL_TYPES = {
    **{c: "date" if t == "DateField" else "timestamptz" for c, t in TEMPORAL_COLUMNS.items()},
    "attributes": "jsonb",
}


@dataclass
class ItemResult:
    index: int
    status: str  # created, updated, merged, unchanged, failed
    client_id: int | None = None
    error: dict | None = None
    warnings: list[dict] = field(default_factory=list)  # {code, message, field}: parts not applied


@dataclass
class _Slot:
    """A profile the batch works on, in memory: an existing (locked) one or a new one."""

    profile: Profile
    new: bool
    owned: set[tuple[str, str]] = field(default_factory=set)  # identifiers known to be its own
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    was_anonymous: bool = False
    agreements: list = field(default_factory=list)  # (item index, agreement, granted, decided at), in item order
    version: str | None = None  # xmin of the row read (existing profiles)
    tags: list[str] = field(default_factory=list)  # tag names the items put on it


def profiles_upsert_many(*, items: list[ProfileInput], source: str, actor: str = "") -> list[ItemResult]:
    """Create or update many profiles with the single-write rules; one result per item, in order."""
    catalog = AttributeCatalog.load()
    agreements = {a.key: a for a in Agreement.objects.filter(is_active=True)}
    results: list[ItemResult | None] = [None] * len(items)
    cleaned: list[tuple[int, CleanInput]] = []
    for index, item in enumerate(items):
        try:
            clean = input_clean(data=item, catalog=catalog, agreements=agreements, require_identifiers=True)
        except DomainError as error:
            results[index] = ItemResult(index, "failed", error=error.as_dict())
            continue
        cleaned.append((index, clean))
    cleaned = _without_erased(cleaned, results)

    slow = with_retries(fn=lambda: _fast_path(cleaned, catalog, results, source=source, actor=actor))
    for index, clean in slow:
        results[index] = _slow_item(index, clean, catalog, source=source, actor=actor)
    return results  # type: ignore[return-value]


def _without_erased(cleaned: list[tuple[int, CleanInput]], results) -> list[tuple[int, CleanInput]]:
    """Items naming a uuid of an erased profile fail (Gone), in one query for the whole batch."""
    uuids = {v for _, clean in cleaned for k, v in clean.pairs if k == IdentifierKind.UUID}
    erased = erased_uuids(uuids) if uuids else set()
    if not erased:
        return cleaned
    kept = []
    for index, clean in cleaned:
        hit = sorted(v for k, v in clean.pairs if k == IdentifierKind.UUID and v in erased)
        if hit:
            results[index] = ItemResult(index, "failed", error=erased_error("uuid", hit[0]).as_dict())
        else:
            kept.append((index, clean))
    return kept


def _slow_item(index: int, clean: CleanInput, catalog: AttributeCatalog, *, source: str, actor: str) -> ItemResult:
    try:
        result = with_retries(fn=lambda: resolve_and_write(clean=clean, catalog=catalog, source=source, actor=actor))
    except DomainError as error:
        return ItemResult(index, "failed", error=error.as_dict())
    if result.merged_client_ids:
        status = "merged"
    elif result.created:
        status = "created"
    else:
        status = "updated" if result.changes or result.tagged else "unchanged"
    return ItemResult(index, status, client_id=result.profile.pk, warnings=result.warnings)


def _fast_path(cleaned, catalog, results, *, source: str, actor: str) -> list[tuple[int, CleanInput]]:
    """Simulate the batch item by item in memory, write the outcome set-based; return the items left over."""
    pairs = {(k, v) for _, clean in cleaned for k, v in clean.identifiers.items() if v is not None}
    owners = identifier_owners(pairs=pairs)
    # Read without locks: only the profiles this batch changes are locked, at write time, and only
    # if they are still the version read here (else the whole batch is resolved again).
    existing = profiles_versions(ids=owners.values())
    if len(existing) != len(set(owners.values())):
        raise Retry  # one was merged or deleted since we read the identifiers
    slots: dict[int, _Slot] = {}  # key: clientId for existing profiles, -n for new ones
    for pid, (profile, version) in existing.items():
        slots[pid] = _Slot(profile=profile, new=False, was_anonymous=profile.anonymous, version=version)
    index_of: dict[tuple[str, str], int] = dict(owners)  # identifier -> slot key
    for pid, held in identifiers_held(profile_ids=existing).items():
        slots[pid].owned.update((kind, value) for kind, values in held.items() for value in values)
    tainted_slots: set[int] = set()
    tainted_pairs: set[tuple[str, str]] = set()
    slow: list[tuple[int, CleanInput]] = []
    item_slot: dict[int, tuple[int, bool, bool]] = {}  # item index -> (slot key, created, changed)
    claims: dict[tuple[str, str], int] = {}
    releases: dict[tuple[str, str], int] = {}
    next_new = -1

    for index, clean in cleaned:
        item_pairs = [(k, v) for k, v in clean.identifiers.items() if v is not None]
        hits = {pair: index_of[pair] for pair in item_pairs if pair in index_of}
        candidates = set(hits.values())
        needs_single_path = (
            len(candidates) > 1
            or candidates & tainted_slots
            or any(pair in tainted_pairs for pair in item_pairs)
            or (hits and uuid_resets(clean=clean, owners=hits, held={key: _held(slots[key]) for key in candidates}))
        )
        if needs_single_path:
            slow.append((index, clean))
            tainted_slots |= candidates
            tainted_pairs |= set(item_pairs)
            continue
        if not candidates:
            profile, identifiers = profile_new(clean=clean)
            key, next_new = next_new, next_new - 1
            slot = slots[key] = _Slot(profile=profile, new=True)
            for pair in identifiers:
                index_of[pair] = key
                slot.owned.add(pair)
                claims[pair] = key
            slot.agreements.extend((index, a, granted, clean.agreements_decided_at) for a, granted in clean.agreements)
            slot.tags.extend(clean.tags)
            item_slot[index] = (key, True, True)
            continue
        key = candidates.pop()
        slot = slots[key]
        diff = profile_diff(
            profile=slot.profile, clean=clean, owns=lambda kind, value, slot=slot: (kind, value) in slot.owned
        )
        for pair in diff.release:
            index_of.pop(pair, None)
            slot.owned.discard(pair)
            if claims.pop(pair, None) is None:
                releases[pair] = key  # a stored row: delete it
        for pair in diff.claim:
            index_of[pair] = key
            slot.owned.add(pair)
            if releases.get(pair) == key:
                del releases[pair]  # released and taken back by the same profile: its row stays
            else:
                claims[pair] = key  # a row released by another profile is deleted before this insert
        for name, (old, new) in diff.changes.items():
            first_old = slot.changes[name][0] if name in slot.changes else old
            slot.changes[name] = (first_old, new)
        slot.agreements.extend((index, a, granted, clean.agreements_decided_at) for a, granted in clean.agreements)
        slot.tags.extend(clean.tags)
        item_slot[index] = (key, False, bool(diff.changes))

    _write(slots, claims, releases, catalog, actor=actor, owners=owners)
    # The consents and tags are written before the profile signals go (their receivers see the whole write: the
    # webhooks' outbox captures each profile's document then); their own signals follow the profile signals.
    with signals.signals_held() as waiting:
        warnings = _set_consents(slots, source=source, actor=actor)
        tagged = tags_put(
            pairs=[(slot.profile.pk, name) for slot in slots.values() for name in slot.tags],
            source=source,
            actor=actor,
        )
    _send_signals(slots, source=source, actor=actor)
    signals.signals_release(waiting)
    _record_results(item_slot, slots, results, warnings, tagged)
    return slow


def _set_consents(slots: dict[int, _Slot], *, source: str, actor: str) -> dict[int, list[dict]]:
    """Every item's agreements in one ``consents_set_many`` call (per profile in item order); warnings by item."""
    entries = [
        (index, ConsentItem(slot.profile.pk, agreement, agreement_state(granted=granted), decided_at=decided_at))
        for slot in slots.values()
        for index, agreement, granted, decided_at in slot.agreements
    ]
    if not entries:
        return {}
    outcome = consents_set_many(items=[item for _, item in entries], source=source, actor=actor)
    warnings: dict[int, list[dict]] = {}
    for (index, _), result in zip(entries, outcome, strict=True):
        if result.error is not None:
            if result.error.code == "profile.not_found":
                raise Retry  # merged or deleted since the batch read it (read without locks): resolve again
            raise result.error  # checked with the item; only a concurrent change of the agreement gets here
        if result.warning:
            warnings.setdefault(index, []).append(result.warning)
    return warnings


def _held(slot: _Slot) -> dict[str, set[str]]:
    held: dict[str, set[str]] = {}
    for kind, value in slot.owned:
        held.setdefault(kind, set()).add(value)
    return held


def _record_results(item_slot, slots, results, warnings: dict[int, list[dict]], tagged) -> None:
    """Only the first item of a new profile created it; later items of the same batch updated it (a new tag
    on a profile counts as an update)."""
    seen: set[int] = set()
    for index in sorted(item_slot):
        key, _, changed = item_slot[index]
        slot = slots[key]
        changed = changed or slot.profile.pk in tagged
        status = "created" if slot.new and key not in seen else "updated" if changed else "unchanged"
        seen.add(key)
        results[index] = ItemResult(index, status, client_id=slot.profile.pk, warnings=warnings.get(index, []))


def _write(slots: dict[int, _Slot], claims, releases, catalog: AttributeCatalog, *, actor: str, owners) -> None:
    catalog.save_pending(created_by=actor)
    new = [slot for slot in slots.values() if slot.new]
    changed = [slot for slot in slots.values() if not slot.new and slot.changes]
    changed_ids = {slot.profile.pk for slot in changed}
    # Profiles whose identifiers change but whose row does not: locked, version-checked, not rewritten.
    relinked = {key for key in (*claims.values(), *releases.values()) if not slots[key].new} - changed_ids
    with connection.cursor() as cursor:
        # The changed rows are updated (and so locked) only if they are still the version read; the
        # relinked ones are locked the same way. Anything else: resolve the batch again.
        if changed and _update_profiles(cursor, [(slot.profile, slot.version) for slot in changed], slots) != len(
            changed
        ):
            raise Retry
        if relinked:
            cursor.execute(
                """
                SELECT p.id FROM profiles_profile p
                JOIN json_to_recordset(%s::json) AS t(id bigint, v text) ON p.id = t.id AND p.xmin = t.v::xid
                ORDER BY p.id FOR UPDATE OF p
                """,
                [_json_rows(("id", "v"), ((key, slots[key].version) for key in sorted(relinked)))],
            )
            if len(cursor.fetchall()) != len(relinked):
                raise Retry
        if (changed or relinked) and identifier_owners(pairs=owners) != owners:
            raise Retry  # an identifier moved since the read
        if new:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence('profiles_profile', 'id')) FROM generate_series(1, %s)",
                [len(new)],
            )
            for slot, (pid,) in zip(new, cursor.fetchall(), strict=True):
                slot.profile.pk = pid
            _copy_profiles(cursor, [slot.profile for slot in new])
        if releases:
            cursor.execute(
                """
                DELETE FROM profiles_identifier i USING json_to_recordset(%s::json) AS t(kind text, value text)
                WHERE i.kind = t.kind AND i.value = t.value
                """,
                [_json_rows(("kind", "value"), releases)],
            )
        if claims:
            cursor.execute(
                """
                INSERT INTO profiles_identifier (profile_id, kind, value, first_seen, last_seen)
                SELECT p, k, v, now(), now() FROM json_to_recordset(%s::json) AS t(p bigint, k text, v text)
                ON CONFLICT (kind, value) DO NOTHING
                RETURNING kind, value
                """,
                [_json_rows(("p", "k", "v"), ((slots[key].profile.pk, k, v) for (k, v), key in claims.items()))],
            )
            if len(cursor.fetchall()) != len(claims):
                raise Retry  # a concurrent write claimed one of them first: resolve the batch again


def _copy_profiles(cursor, profiles: list[Profile]) -> None:
    with cursor.copy(f"COPY profiles_profile ({', '.join(COLUMNS)}) FROM STDIN") as copy:
        for profile in profiles:
            row = [getattr(profile, "pk" if column == "id" else column) for column in COLUMNS]
            row[COLUMNS.index("attributes")] = json.dumps(profile.attributes)
            copy.write_row(row)


def _changed_columns(changes: dict[str, tuple]) -> set[str]:
    """The Profile columns a change set (keys by API name) touches."""
    columns = set()
    for name in changes:
        if name.startswith("attributes."):
            columns.add("attributes")
        elif name in IDENTIFIER_COLUMNS:
            columns.add(IDENTIFIER_COLUMNS[name])
        else:
            columns.add(EDITABLE_BY_API_NAME[name])
    return columns


def _update_profiles(cursor, profiles: list[tuple[Profile, str]], slots) -> int:
    """Write the changed columns of these profiles in one statement, each only if its row is still the
    version read (``xmin``); returns how many rows were written."""
    now = timezone.now()
    changed = set().union(*(_changed_columns(slots[p.pk].changes) for p, _ in profiles))
    columns = [c for c in UPDATABLE if c in changed or c == "updated_at"]
    temporal = {c for c in columns if SQL_TYPES.get(c) in ("date", "timestamptz")}
    rows = []
    for profile, version in sorted(profiles, key=lambda pair: pair[0].pk):
        row: list = [profile.pk, version]
        for column in columns:
            value = now if column == "updated_at" else getattr(profile, column)
            row.append(value.isoformat() if value is not None and column in temporal else value)
        rows.append(row)
    assignments = ", ".join(f"{c} = t.{c}" for c in columns)
    definitions = ", ".join(f"{c} {SQL_TYPES.get(c, 'text')}" for c in columns)
    cursor.execute(
        f"""
        UPDATE profiles_profile p SET {assignments}
        FROM json_to_recordset(%s::json) AS t(id bigint, v text, {definitions})
        WHERE p.id = t.id AND p.xmin = t.v::xid
        """,  # noqa: S608 - column names come from the model's registry
        [_json_rows(("id", "v", *columns), rows)],
    )
    for profile, _ in profiles:
        profile.updated_at = now
    return cursor.rowcount


def _json_rows(names: tuple[str, ...], rows) -> str:
    """Rows as one JSON array of objects, for ``json_to_recordset``: the set-based statements take one
    parameter (psycopg adapts a Python list to an array literal element by element, ~3 µs each)."""
    return json.dumps([dict(zip(names, row, strict=True)) for row in rows], separators=(",", ":"))


def _send_signals(slots: dict[int, _Slot], *, source: str, actor: str) -> None:
    created = [slot.profile for slot in slots.values() if slot.new]
    changes = []
    identified = []
    for slot in slots.values():
        if slot.new:
            continue
        net = {name: (old, new) for name, (old, new) in slot.changes.items() if old != new}
        if net:
            changes.append((slot.profile.pk, net))
        if slot.was_anonymous and not slot.profile.anonymous:
            identified.append(slot.profile)
    if created:
        signals.profile_created.send(sender=Profile, profiles=created, source=source, actor=actor)
    if changes:
        signals.profile_changed.send(sender=Profile, changes=changes, source=source, actor=actor)
    if identified:
        signals.profile_identified.send(sender=Profile, profiles=identified, source=source, actor=actor)


# --- jobs ---------------------------------------------------------------------------------------

BATCH_JOB_KIND = "profiles.batch"


def profile_input_to_json(*, data: ProfileInput) -> dict:
    entry = {
        "identifiers": data.identifiers,
        "fields": {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in data.fields.items()},
        "attributes": data.attributes,
        "agreements": data.agreements,
    }
    if data.agreements_decided_at is not None:
        entry["agreements_decided_at"] = data.agreements_decided_at.isoformat()
    if data.tags:
        entry["tags"] = list(data.tags)
    return entry


def profile_input_from_json(*, entry: dict) -> ProfileInput:
    entry = dict(entry)
    decided_at = entry.pop("agreements_decided_at", None)
    return ProfileInput(**entry, agreements_decided_at=datetime.fromisoformat(decided_at) if decided_at else None)


def profiles_batch_submit(*, items: list[ProfileInput | DomainError], source: str, actor: str = "") -> Job:
    """Store a batch as a job and queue it for the worker (after commit). Items that failed the
    surface's shape check are kept as failures at their index, so the job reports them."""
    payload = [
        {"error": item.as_dict()} if isinstance(item, DomainError) else profile_input_to_json(data=item)
        for item in items
    ]
    from profiles.tasks import run_profile_batch

    job = Job.objects.create(kind=BATCH_JOB_KIND, payload=payload, source=source, actor=actor)
    transaction.on_commit(lambda: run_profile_batch.enqueue(str(job.pk)))
    return job


def profiles_batch_run(*, job_id) -> Job:
    """Run (or run again) a batch job, ``BATCH_JOB_CHUNK_ITEMS`` items per transaction, in order.

    After each chunk the job records how far it got (``processed``), its counts and errors, so a job cut off
    (a killed connection, a stopped worker) says which items were applied and which were not, and running it
    again starts after the last applied chunk. A finished job run again starts over: its items come out
    unchanged.
    """
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id, kind=BATCH_JOB_KIND)
        if job.status == Job.Status.DONE:
            job.processed = 0
        job.status, job.started_at, job.attempts = Job.Status.RUNNING, timezone.now(), job.attempts + 1
        job.message, job.finished_at = "", None
        if job.processed == 0:
            job.counts = dict.fromkeys(("created", "updated", "merged", "unchanged", "failed"), 0)
            job.errors, job.warnings = [], []
        job.save(
            update_fields=[
                "status",
                "started_at",
                "attempts",
                "message",
                "finished_at",
                "counts",
                "errors",
                "warnings",
                "processed",
            ]
        )
    size = max(1, settings.BATCH_JOB_CHUNK_ITEMS)
    while job.processed < len(job.payload):
        start = job.processed
        chunk = list(enumerate(job.payload[start : start + size], start=start))
        try:
            with transaction.atomic():
                _run_chunk(job, chunk)
                job.processed = start + len(chunk)
                job.save(update_fields=["processed", "counts", "errors", "warnings"])
        except Exception as exc:
            logger.exception("batch job %s failed at item %s", job.pk, start)
            _reconnect()
            message = (
                f"{type(exc).__name__}: {exc}. Items {start}–{len(job.payload) - 1} were not applied; "
                "run the job again to finish them."
            )
            Job.objects.filter(pk=job.pk).update(status=Job.Status.FAILED, message=message, finished_at=timezone.now())
            raise
    job.status, job.message, job.finished_at = Job.Status.DONE, "", timezone.now()
    job.save(update_fields=["status", "message", "finished_at"])
    return job


def _run_chunk(job: Job, chunk: list[tuple[int, dict]]) -> None:
    indexed = [(i, entry) for i, entry in chunk if "error" not in entry]
    results = profiles_upsert_many(
        items=[profile_input_from_json(entry=entry) for _, entry in indexed], source=job.source, actor=job.actor
    )
    for i, entry in chunk:
        if "error" in entry:
            job.counts["failed"] += 1
            job.errors.append({"index": i, **entry["error"]})
    for (i, _), result in zip(indexed, results, strict=True):
        job.counts[result.status] += 1
        if result.error:
            job.errors.append({"index": i, **result.error})
        job.warnings.extend({"index": i, **warning} for warning in result.warnings)
    job.errors.sort(key=lambda e: e["index"])


def _reconnect() -> None:
    """After a database error: drop the connection if it is broken, so recording the failure takes a new one."""
    connection.close_if_unusable_or_obsolete()
