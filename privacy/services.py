"""Erasure (deleting a profile is erasing it), its tombstone log, and replaying that log after a restore.

``profile_erase`` runs every registered erasure step (``profiles.privacy_registry``) in one transaction, tombstones the
profile's clientId, its merged-in clientIds and its uuids, records who asked (``Erasure``), appends a line to
the tombstone log outside the database and sends ``profile_deleted`` (a ``profile.deleted`` system event
without personal data). ``erasure_replay`` applies that log again to a database restored from a backup.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from consents.models import ConsentRecord, ConsentState
from crm.errors import DomainError, NotFound
from privacy.digests import erasure_key, identifier_digest
from privacy.models import Erasure, Tombstone, TombstoneKind
from profiles import signals
from profiles.models import ClientIdAlias, Event, EventAction, Identifier, MergeRecord, Profile, ProfileTag, Transaction
from profiles.privacy_registry import ErasureContext, ExportContext, registry
from profiles.selectors import client_ids_resolve, identifier_owners
from profiles.tombstones import tombstone_check

logger = logging.getLogger(__name__)
LOG_VERSION = 1


class ErasureLogUnavailable(DomainError):
    status = 503
    code = "erasure.log_unavailable"


# --- erasure ------------------------------------------------------------------------------------------------


def _identifiers_of(profile) -> set[tuple[str, str]]:
    """What names the person: the identifiers it holds, and those of profiles merged into it (from the merge
    snapshots) that no other live profile holds now (a uuid that left by a UUID reset is someone else's)."""

    held = set(Identifier.objects.filter(profile_id=profile.pk).values_list("kind", "value"))
    if profile.uuid:
        held.add(("uuid", profile.uuid))
    snapshots = MergeRecord.objects.filter(survivor_client_id=profile.pk, undone_at__isnull=True)
    for snapshot in snapshots.values_list("snapshot", flat=True):
        for item in (snapshot or {}).get("identifiers", []):
            if item.get("kind") and item.get("value"):
                held.add((item["kind"], item["value"]))
    owners = identifier_owners(pairs=held)
    return {pair for pair in held if owners.get(pair, profile.pk) == profile.pk}


def profile_erase(*, profile, source: str, actor: str = "", log: bool = True, replayed: bool = False) -> Erasure:
    """Erase one profile everywhere; return the ``Erasure`` record (rows per step in ``counts``).

    A clientId already erased raises Gone; one that never existed raises NotFound."""

    with transaction.atomic():
        locked = Profile.objects.select_for_update().filter(pk=profile.pk).first()
        if locked is None:
            tombstone_check(TombstoneKind.CLIENT_ID, profile.pk, field="clientId")
            raise NotFound(f"Profile {profile.pk} does not exist.", field="clientId", code="profile.not_found")
        merged_ids = sorted(ClientIdAlias.objects.filter(profile_id=locked.pk).values_list("old_client_id", flat=True))
        client_ids = [locked.pk, *merged_ids]
        identifiers = sorted(_identifiers_of(locked))
        now = timezone.now()
        erasure = Erasure.objects.create(
            client_id=locked.pk,
            merged_client_ids=merged_ids,
            source=source,
            actor=actor or "",
            requested_at=now,
            replayed_at=now if replayed else None,
        )
        ctx = ErasureContext(
            profile=locked,
            client_ids=client_ids,
            identifiers=identifiers,
            source=source,
            actor=actor or "",
            erasure=erasure,
        )
        counts: dict[str, int] = {}
        for step in registry.erasure_steps():
            counts[step.name] = int(step.erase(ctx) or 0)
        erasure.counts = counts
        erasure.save(update_fields=["counts"])
        uuids = [identifier_digest(TombstoneKind.UUID, v) for k, v in identifiers if k == TombstoneKind.UUID]
        _tombstones_add(erasure, client_ids, uuids)
        if log:
            erasure_log_append(entry=_log_entry(erasure, client_ids, identifiers))
        signals.profile_deleted.send(
            sender=Profile,
            snapshots=[{"clientId": locked.pk, "mergedClientIds": merged_ids, "erasureId": erasure.pk}],
            source=source,
            actor=actor,
        )
    return erasure


def _tombstones_add(erasure: Erasure, client_ids, uuid_digests) -> None:
    rows = [Tombstone(kind=TombstoneKind.CLIENT_ID, value=str(i), erasure=erasure) for i in sorted(set(client_ids))]
    rows += [Tombstone(kind=TombstoneKind.UUID, value=d, erasure=erasure) for d in sorted(set(uuid_digests))]
    Tombstone.objects.bulk_create(rows, ignore_conflicts=True)


def erasure_preview(*, profile) -> dict[str, int]:
    """What erasing the profile would remove, by kind (the card's confirmation names it); a few counts."""

    merged = list(ClientIdAlias.objects.filter(profile_id=profile.pk).values_list("old_client_id", flat=True))
    events = Event.objects.filter(profile_id=profile.pk)
    return {
        "identifiers": Identifier.objects.filter(profile_id=profile.pk).count(),
        "custom attributes": len(profile.attributes or {}),
        "events": events.exclude(action=EventAction.NOTE_ADDED).count(),
        "notes": events.filter(action=EventAction.NOTE_ADDED).count(),
        "orders": Transaction.objects.filter(profile_id=profile.pk).count(),
        "tags": ProfileTag.objects.filter(profile_id=profile.pk).count(),
        "consents": ConsentState.objects.filter(profile_id=profile.pk).count(),
        "consent ledger records (IP and browser blanked, kept)": ConsentRecord.objects.filter(
            client_id__in=[profile.pk, *merged]
        ).count(),
        "merged-in profiles": len(merged),
    }


# --- portability ------------------------------------------------------------------------------------------

EXPORT_FORMAT = "profile-export/1"


def profile_export(*, profile) -> dict[str, Any]:
    """Everything held about one person as one JSON-able document: each registered export step's part under
    its name (profile, identifiers, attributes, tags, consents, events, notes, orders, merges, …)."""

    merged = sorted(ClientIdAlias.objects.filter(profile_id=profile.pk).values_list("old_client_id", flat=True))
    ctx = ExportContext(profile=profile, client_ids=[profile.pk, *merged])
    document: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "exportedAt": timezone.now().isoformat(),
        "clientId": profile.pk,
    }
    for step in registry.export_steps():
        document[step.name] = step.export(ctx)
    return document


# --- the tombstone log ------------------------------------------------------------------------------------


def erasure_log_path() -> Path:
    return Path(settings.ERASURE_LOG_PATH)


def _log_entry(erasure: Erasure, client_ids: list[int], identifiers: list[tuple[str, str]]) -> dict:
    key = erasure_key()
    digests: dict[str, list[str]] = {}
    for kind, value in identifiers:
        digests.setdefault(kind, []).append(identifier_digest(kind, value, key=key))
    return {
        "v": LOG_VERSION,
        "erasedAt": erasure.requested_at.isoformat(),
        "clientId": erasure.client_id,
        "mergedClientIds": [i for i in client_ids if i != erasure.client_id],
        "digests": {kind: sorted(values) for kind, values in sorted(digests.items())},
    }


def erasure_log_append(*, entry: dict) -> None:
    """Append one line and fsync before the erasure commits: an erasure the database lost in a restore is in the
    log. (A line whose transaction then failed is applied by the next replay: the request to erase stands.)"""
    path = erasure_log_path()
    line = json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        logger.error("erasure log %s cannot be written: %s", path, exc)
        raise ErasureLogUnavailable(
            "The erasure log cannot be written; nothing was erased. Retry when it is writable.", field=None
        ) from exc


@dataclass
class LogRead:
    entries: list[dict] = field(default_factory=list)
    bad_lines: list[int] = field(default_factory=list)


def erasure_log_read(*, path: Path | None = None) -> LogRead:
    result = LogRead()
    path = path or erasure_log_path()
    if not path.exists():
        return result
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                int(entry["clientId"])
            except (ValueError, KeyError, TypeError):
                result.bad_lines.append(number)
                continue
            result.entries.append(entry)
    return result


# --- replay after a restore -------------------------------------------------------------------------------


@dataclass
class ReplayReport:
    entries: int = 0
    erased_again: list[int] = field(default_factory=list)  # profiles the restore had brought back
    already: list[int] = field(default_factory=list)  # erasures the restored database holds
    recorded: list[int] = field(default_factory=list)  # erasures whose profile the backup never had
    released: list[str] = field(default_factory=list)  # "uuid held by clientId N": tombstoned uuids let go
    review: list[str] = field(default_factory=list)  # matches left for a person to look at
    bad_lines: list[int] = field(default_factory=list)
    sequence: int | None = None

    def lines(self) -> list[str]:
        out = [f"{self.entries} erasures in the log."]
        if self.erased_again:
            out.append(f"Erased again (the restore had brought them back): clientId {_ids(self.erased_again)}.")
        if self.recorded:
            out.append(f"Tombstoned (not in the restored database): clientId {_ids(self.recorded)}.")
        if self.already:
            out.append(f"Already erased in this database: clientId {_ids(self.already)}.")
        out += [f"Released a tombstoned identifier: {item}." for item in self.released]
        out += [f"Review: {item}." for item in self.review]
        if self.bad_lines:
            out.append(f"Skipped unreadable log lines: {', '.join(map(str, self.bad_lines))}.")
        if self.sequence is not None:
            out.append(f"New clientIds start above {self.sequence}.")
        return out


def _ids(ids) -> str:
    return ", ".join(str(i) for i in sorted(ids))


def erasure_replay(*, path: Path | None = None) -> ReplayReport:
    """Apply the tombstone log to this database (one restored from a backup): erase again every profile an
    erasure in the log removed and the restore brought back, record the erasures and tombstones it lacks,
    let go of tombstoned uuids other profiles hold, name other identifiers that match a logged digest, and move
    the clientId sequence past every logged id so no erased clientId is handed out again. Safe to run twice."""

    read = erasure_log_read(path=path)
    report = ReplayReport(entries=len(read.entries), bad_lines=read.bad_lines)
    digests: dict[tuple[str, str], int] = {}
    highest = 0
    for entry in read.entries:
        client_id = int(entry["clientId"])
        ids = [client_id, *(int(i) for i in entry.get("mergedClientIds", []))]
        highest = max(highest, *ids)
        logged = entry.get("digests") or {}
        for kind, values in logged.items():
            for value in values:
                digests[(kind, value)] = client_id
        with transaction.atomic():
            existing = Erasure.objects.filter(client_id=client_id).first()
            if existing is not None:
                _tombstones_add(existing, ids, logged.get(TombstoneKind.UUID, []))
                report.already.append(client_id)
                continue
            resolved = client_ids_resolve(client_ids=ids)
            for pid in sorted(set(resolved.values())):
                if pid not in ids:
                    named = sorted(i for i, p in resolved.items() if p == pid)
                    report.review.append(
                        f"clientId {_ids(named)} of the erasure of {client_id} resolves to clientId {pid}, which "
                        "was not erased"
                    )
                    continue
                profile = Profile.objects.get(pk=pid)
                profile_erase(profile=profile, source="replay", actor="system", log=False, replayed=True)
                report.erased_again.append(pid)
            erasure = Erasure.objects.filter(client_id=client_id).first()
            if erasure is None:
                erasure = Erasure.objects.create(
                    client_id=client_id,
                    merged_client_ids=ids[1:],
                    source="replay",
                    actor="system",
                    replayed_at=timezone.now(),
                )
                if client_id not in report.erased_again:
                    report.recorded.append(client_id)
            _tombstones_add(erasure, ids, logged.get(TombstoneKind.UUID, []))
    if digests:
        _identifiers_match(digests, report)
    report.sequence = _sequence_past(highest)
    return report


def _identifiers_match(digests: dict[tuple[str, str], int], report: ReplayReport) -> None:
    """Walk the identifier table once, comparing keyed digests: a tombstoned uuid is taken from whoever holds it;
    an e-mail, phone or customId of an erased person on a live profile is named for review (it may be the same
    person signed up again after the backup, which is their right)."""

    key = erasure_key()
    release: list[int] = []
    for pk, kind, value, profile_id in Identifier.objects.values_list("pk", "kind", "value", "profile_id").iterator(
        chunk_size=5000
    ):
        erased = digests.get((kind, identifier_digest(kind, value, key=key)))
        if erased is None:
            continue
        if kind == TombstoneKind.UUID:
            release.append(pk)
            report.released.append(f"a uuid of erased clientId {erased}, held by clientId {profile_id}")
        else:
            report.review.append(f"clientId {profile_id} holds a {kind} of erased clientId {erased}")
    if release:
        values = set(Identifier.objects.filter(pk__in=release).values_list("value", flat=True))
        Identifier.objects.filter(pk__in=release).delete()
        _uuid_columns_repair(values)


def _uuid_columns_repair(released: set[str]) -> None:
    """A profile whose main uuid was taken back gets another it holds, or a new one: every profile has a uuid."""
    import uuid as uuid_lib

    for profile in Profile.objects.filter(uuid__in=released):
        other = Identifier.objects.filter(profile=profile, kind=TombstoneKind.UUID).order_by("-last_seen").first()
        if other is None:
            other = Identifier.objects.create(profile=profile, kind=TombstoneKind.UUID, value=str(uuid_lib.uuid4()))
        Profile.objects.filter(pk=profile.pk).update(uuid=other.value)


def _sequence_past(highest: int) -> int | None:
    """Move the profiles' id sequence past the highest logged clientId (a restore rewinds it)."""

    if not highest:
        return None
    table = Profile._meta.db_table
    with connection.cursor() as cursor:
        highest_live = f"(SELECT COALESCE(MAX(id), 1) FROM {table})"  # noqa: S608 - a model's table
        cursor.execute(
            f"SELECT setval(pg_get_serial_sequence(%s, 'id'), GREATEST(%s, {highest_live}))", [table, highest]
        )
        return cursor.fetchone()[0]
