"""Running an import: one run at a time per job (an advisory lock), then the first phase, staging (each record
mapped and staged under its strongest identifier, the last line winning), then writing
(``imports.services.writing``)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.utils import timezone

from crm.actors import actor_of
from crm.errors import Conflict, DomainError
from crm.models import Job
from imports.mapping import Mapping, MappingInvalid, RowInvalid, mapping_compile
from imports.models import IMPORT_JOB_KIND, ImportJob, Issue, StagedRow
from imports.readers import FileUnusable
from imports.services.common import (
    COUNT_KEYS,
    _chunks,
    _key,
    _opened,
    logger,
)
from imports.services.writing import DryRunBusy, _write
from imports.signals import import_finished


def import_run(*, job_id, progress: Callable[[ImportJob], None] | None = None) -> ImportJob:
    """Run (or run again) an import job. A cut-off run resumes after its last committed chunk (a dry run, after
    its first pass); a finished dry run starts over, a finished run cannot (its file was deleted: ``Conflict``).
    A file that turns out unusable fails the job (``FileUnusable`` is raised after the job records why)."""
    lock = _run_lock(job_id)
    try:
        return _run(job_id, progress)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [lock])


def _run_lock(job_id) -> int:
    """One run of a job at a time (a session lock: a killed worker's ends with its connection). The server may
    take a moment to notice a killed worker, so wait a little before refusing."""
    key = uuid.UUID(str(job_id)).int & (2**63 - 1)
    with connection.cursor() as cursor:
        for _ in range(50):
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
            if cursor.fetchone()[0]:
                return key
            time.sleep(0.1)
    raise Conflict(f"Import {job_id} is being run by another process.", field="jobId", code="import.running")


def _run(job_id, progress) -> ImportJob:
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id, kind=IMPORT_JOB_KIND)
        imp = ImportJob.objects.get(pk=job_id)
        if job.status == Job.Status.DONE or imp.phase == ImportJob.Phase.DONE:
            if not imp.file:
                raise Conflict(
                    f"Import {imp.pk} has finished and its file was deleted then; import the file again.",
                    field="jobId",
                    code="import.file_deleted",
                )
            _reset(imp)
            job.processed = 0
            job.counts = {}
        if not job.counts:
            job.counts = dict.fromkeys(COUNT_KEYS, 0)
        job.status, job.attempts = Job.Status.RUNNING, job.attempts + 1
        job.started_at = job.started_at if imp.records_read else timezone.now()
        job.message, job.finished_at = "", None
        job.save(update_fields=["status", "started_at", "attempts", "message", "finished_at", "counts", "processed"])
        imp.job = job
    try:
        mapping = mapping_compile(imp.mapping)
        if imp.phase == ImportJob.Phase.STAGING:
            _stage(imp, mapping, progress)
        _write(imp, mapping, progress)
    except Exception as exc:
        if not connection.in_atomic_block and connection.connection is not None and not connection.is_usable():
            connection.close()  # a dropped connection: recording the failure takes a new one
        if isinstance(exc, FileUnusable | MappingInvalid | DryRunBusy):
            message = f"{exc.message} ({exc.field})" if isinstance(exc, MappingInvalid) else str(exc)
        elif imp.dry_run:
            logger.exception("dry run of import %s failed", imp.pk)
            message = f"{type(exc).__name__}: {exc}. Nothing was written; run the dry run again."
        else:
            logger.exception("import %s failed after %s records", imp.pk, imp.records_written)
            message = (
                f"{type(exc).__name__}: {exc}. The first {imp.records_written} records were handled, the others "
                "not applied; run the import again to finish them."
            )
        Job.objects.filter(pk=imp.pk).update(status=Job.Status.FAILED, message=message, finished_at=timezone.now())
        imp.job.refresh_from_db()
        _finished(imp)
        raise
    with transaction.atomic():
        StagedRow.objects.filter(job=imp).delete()
        imp.phase = ImportJob.Phase.DONE
        if not imp.dry_run and imp.file:
            # The upload is not kept once it is written (the report keeps the failed and warned lines): an
            # erased person's data does not linger in it. A dry run keeps it for the run that may follow.
            stored = imp.file.name
            transaction.on_commit(lambda: default_storage.delete(stored))
            imp.file = ""
        imp.save(update_fields=["phase", "file"])
        job = imp.job
        job.status, job.message, job.finished_at = Job.Status.DONE, "", timezone.now()
        job.save(update_fields=["status", "message", "finished_at"])
    _finished(imp)
    if progress:
        progress(imp)
    return imp


def _finished(imp: ImportJob) -> None:
    job = imp.job
    import_finished.send(
        sender=ImportJob,
        import_job=imp,
        status=job.status,
        counts=dict(job.counts),
        dry_run=imp.dry_run,
        source=job.source,
        actor=actor_of(import_id=imp.pk),
    )


def _reset(imp: ImportJob) -> None:
    Issue.objects.filter(job=imp).delete()
    StagedRow.objects.filter(job=imp).delete()
    imp.phase = ImportJob.Phase.STAGING
    imp.records_read = imp.bytes_read = imp.staged = imp.records_written = 0
    imp.save()


def _stage(imp: ImportJob, mapping: Mapping, progress) -> None:
    """First pass: the line that wins for each person (the last one with the same strongest identifier)."""
    size = max(1, settings.IMPORT_CHUNK_ROWS)
    with _opened(imp, mapping) as (records, counting):
        for chunk in _chunks(records, imp.records_read, size):
            keys: dict[str, int] = {}
            for record in chunk:
                try:
                    keys[_key(mapping.identifiers(record.data))] = record.line
                except (RowInvalid, DomainError):
                    continue  # the writing pass reports it
            with transaction.atomic():
                if keys:
                    with connection.cursor() as cursor:
                        cursor.execute(
                            """
                            INSERT INTO imports_stagedrow (job_id, key, line)
                            SELECT %s, k, l FROM json_to_recordset(%s::json) AS t(k text, l integer)
                            ON CONFLICT (job_id, key) DO UPDATE SET line = EXCLUDED.line
                            """,
                            [imp.pk, json.dumps([{"k": k, "l": v} for k, v in keys.items()], separators=(",", ":"))],
                        )
                imp.records_read += len(chunk)
                imp.bytes_read = counting.count
                imp.save(update_fields=["records_read", "bytes_read"])
            if progress:
                progress(imp)
    with transaction.atomic():
        imp.staged = StagedRow.objects.filter(job=imp).count()
        imp.phase = ImportJob.Phase.WRITING
        imp.save(update_fields=["phase", "staged"])
