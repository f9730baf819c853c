"""The second phase of a run: the staged rows, in line order, through ``profiles_upsert_many`` a chunk at a time,
each chunk committed with its checkpoint; a dry run writes the same way inside one transaction rolled back."""

from __future__ import annotations

import json
import tempfile

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, OperationalError, connection, connections, transaction

from crm.actors import actor_of
from crm.errors import DomainError
from crm.lock_waits import is_lock_timeout, lock_wait_limit
from crm.models import Job
from imports.mapping import Mapping, RowInvalid
from imports.metrics import IMPORT_ROWS
from imports.models import ImportJob, Issue
from imports.services.common import (
    COUNT_KEYS,
    SOURCE,
    _chunks,
    _issue,
    _key,
    _opened,
    _superseded,
    logger,
)
from profiles.services.batch import profiles_upsert_many

ISSUE_FIELDS = ("kind", "line", "code", "field", "message", "original")


def _write(imp: ImportJob, mapping: Mapping, progress) -> None:
    """Second pass: each line mapped again; the winners go through the batch path, the others are superseded."""
    if imp.dry_run:
        _write_dry(imp, mapping, progress)
        return
    size = max(1, settings.IMPORT_CHUNK_ROWS)
    actor = actor_of(import_id=imp.pk)
    job = imp.job
    with _opened(imp, mapping) as (records, _):
        for chunk in _chunks(records, imp.records_written, size):
            with transaction.atomic():
                issues = _write_chunk(imp, job.counts, mapping, chunk, actor)
                if issues:
                    Issue.objects.bulk_create(issues)
                imp.records_written += len(chunk)
                imp.save(update_fields=["records_written"])
                job.processed = imp.records_written
                job.save(update_fields=["processed", "counts"])
            IMPORT_ROWS.inc(len(chunk))
            if progress:
                progress(imp)


def _write_chunk(imp: ImportJob, counts: dict, mapping: Mapping, chunk: list, actor: str) -> list[Issue]:
    """Map, pick the winners and write one chunk (in the caller's transaction); count its outcomes into
    ``counts`` and return its report lines."""
    issues: list[Issue] = []
    mapped = []
    for record in chunk:
        try:
            data = mapping.apply(record.data)
            mapped.append((record, data, _key(data.identifiers)))
        except (RowInvalid, DomainError) as error:
            issues.append(_issue(imp, Issue.Kind.ERROR, record.line, error, record.original))
            counts["failed"] += 1
    winners: dict[str, int] = {}
    if mapped:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT key, line FROM imports_stagedrow WHERE job_id = %s AND key = ANY(%s)",
                [imp.pk, list({key for _, _, key in mapped})],
            )
            winners = dict(cursor.fetchall())
    lines = []
    items = []
    for record, data, key in mapped:
        winner = winners.get(key, record.line)
        if winner != record.line:
            issues.append(_superseded(imp, record.line, winner, record.original))
            counts["superseded"] += 1
            counts["warnings"] += 1
            continue
        lines.append(record)
        items.append(data)
    results = profiles_upsert_many(items=items, source=SOURCE, actor=actor) if items else []
    for record, result in zip(lines, results, strict=True):
        counts[result.status] += 1
        if result.error:
            issues.append(_issue(imp, Issue.Kind.ERROR, record.line, result.error, record.original))
        for warning in result.warnings:
            issues.append(_issue(imp, Issue.Kind.WARNING, record.line, warning, record.original))
            counts["warnings"] += 1
    return issues


class DryRunBusy(Exception):
    """A dry run waited too long for a row a live write held (``IMPORT_DRY_RUN_LOCK_TIMEOUT_SECONDS``)."""


def _write_dry(imp: ImportJob, mapping: Mapping, progress) -> None:
    """A dry run's second pass: the real writes, chunk after chunk, in ONE transaction rolled back at the end, so
    each chunk sees what the earlier ones would have created, updated or merged (its outcomes are the run's).

    The job's progress goes on a connection of its own (``_SideProgress``), outside that transaction, so the
    job page follows it; the report lines wait in a temporary file (not in memory) and are stored after the
    rollback. The transaction's ``lock_timeout`` is ``IMPORT_DRY_RUN_LOCK_TIMEOUT_SECONDS``: the dry run never
    waits long for a live write (it fails with ``DryRunBusy``); live writes to the profiles it changes wait for
    it to end. Its effects die with it, so a cut-off dry run starts this pass over when run again (the first
    pass keeps its checkpoint).
    """
    size = max(1, settings.IMPORT_CHUNK_ROWS)
    actor = actor_of(import_id=imp.pk)
    job = imp.job
    with transaction.atomic():
        Issue.objects.filter(job=imp).delete()
        imp.records_written = 0
        imp.save(update_fields=["records_written"])
        job.processed, job.counts = 0, dict.fromkeys(COUNT_KEYS, 0)
        job.save(update_fields=["processed", "counts"])
    timeout = max(1, round(settings.IMPORT_DRY_RUN_LOCK_TIMEOUT_SECONDS * 1000))
    side = _SideProgress()
    with tempfile.TemporaryFile("w+", encoding="utf-8") as buffer:
        try:
            with transaction.atomic():
                lock_wait_limit(settings.IMPORT_DRY_RUN_LOCK_TIMEOUT_SECONDS, transaction_only=True)
                hooks = len(connection.run_on_commit)
                with _opened(imp, mapping) as (records, _):
                    for chunk in _chunks(records, 0, size):
                        try:
                            issues = _write_chunk(imp, job.counts, mapping, chunk, actor)
                        except OperationalError as exc:
                            if is_lock_timeout(exc):
                                raise DryRunBusy(
                                    f"A live write held a profile this dry run needed for more than {timeout} ms. "
                                    "Nothing was written; run the dry run again."
                                ) from exc
                            raise
                        for issue in issues:
                            buffer.write(json.dumps([getattr(issue, name) for name in ISSUE_FIELDS]) + "\n")
                        # This transaction never commits: the commit hooks its writes registered would only
                        # pile up, chunk after chunk.
                        del connection.run_on_commit[hooks:]
                        imp.records_written += len(chunk)
                        job.processed = imp.records_written
                        side.save(imp, job)
                        if progress:
                            progress(imp)
                transaction.set_rollback(True)
        finally:
            side.close()
        buffer.seek(0)
        with transaction.atomic():
            batch = []
            for text in buffer:
                batch.append(Issue(job=imp, **dict(zip(ISSUE_FIELDS, json.loads(text), strict=True))))
                if len(batch) >= 2000:
                    Issue.objects.bulk_create(batch)
                    batch = []
            Issue.objects.bulk_create(batch)
            imp.save(update_fields=["records_written"])
            job.save(update_fields=["processed", "counts"])


class _SideProgress:
    """A dry run's checkpoint and counts, written on a second connection (autocommit) while its own transaction
    is open, so the job page follows them. A row locked by someone else is skipped, never waited for: this is
    for the eye; the figures are stored again after the rollback."""

    def __init__(self):
        self.connection = connections.create_connection(DEFAULT_DB_ALIAS)

    def save(self, imp: ImportJob, job: Job) -> None:
        try:
            with self.connection.cursor() as cursor:
                cursor.execute(
                    f"""
                    UPDATE {ImportJob._meta.db_table} SET records_written = %s
                    WHERE job_id = (SELECT job_id FROM {ImportJob._meta.db_table} WHERE job_id = %s
                                    FOR NO KEY UPDATE SKIP LOCKED)
                    """,  # noqa: S608 - table names from the models
                    [imp.records_written, imp.pk],
                )
                cursor.execute(
                    f"""
                    UPDATE {Job._meta.db_table} SET processed = %s, counts = %s::jsonb
                    WHERE id = (SELECT id FROM {Job._meta.db_table} WHERE id = %s FOR NO KEY UPDATE SKIP LOCKED)
                    """,  # noqa: S608 - table names from the models
                    [job.processed, json.dumps(job.counts), job.pk],
                )
        except DatabaseError:
            logger.warning("import %s: a dry run's progress was not recorded", imp.pk, exc_info=True)

    def close(self) -> None:
        self.connection.close()
