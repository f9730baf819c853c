"""File imports: create a job from a file and a mapping, and run it (stage, then write through the batch path).

A run has two phases, each committed chunk by chunk together with its checkpoint, so a run cut off (a worker
killed with SIGKILL) resumes where it stopped when run again, neither losing nor doubling a line:

1. **Staging**: the reader streams records, the mapping turns each into a ``ProfileInput``, and it is staged
   under its strongest identifier (``IDENTIFIER_PRIORITY``). A later line with the same identifier replaces the
   staged row (the last line wins for the whole file, whatever the chunking); the earlier line is reported as
   a superseded warning. Lines that cannot be mapped are reported as errors.
2. **Writing**: the staged rows, in the order of their lines, go through ``profiles_upsert_many`` (identity
   resolution, merges, set-based consents and tags, system events in bulk) ``IMPORT_CHUNK_ROWS`` at a time.
   A dry run does the same, but its whole writing pass is one transaction rolled back at the end: each chunk sees
   what the earlier ones would have written, so its outcomes are the run's; nothing stays (``_write_dry``).

The writes' actor is ``import:<job id>``; the job's own ``actor`` is who submitted it.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import DEFAULT_DB_ALIAS, DatabaseError, OperationalError, connection, connections, transaction
from django.tasks import task
from django.utils import timezone

from crm.actors import actor_of
from crm.errors import Conflict, DomainError, NotFound, ValidationFailed
from crm.lock_waits import is_lock_timeout, lock_wait_limit
from crm.models import Job
from crm.queues import BATCHES
from crm.request_id import request_id_scope
from imports.mapping import Mapping, MappingInvalid, RowInvalid, mapping_compile
from imports.models import IMPORT_JOB_KIND, Format, ImportJob, Issue, StagedRow
from imports.readers import READERS, CountingReader, FileUnusable, detect_csv, format_guess
from imports.signals import import_finished
from profiles.normalize import identifier_normalize
from profiles.services.batch import profiles_upsert_many

logger = logging.getLogger(__name__)

SOURCE = "import"
COUNT_KEYS = ("created", "updated", "merged", "unchanged", "failed", "superseded", "warnings")
REPORT_HEADER = ["line", "kind", "code", "field", "message", "original"]


class ImportRefused(ValidationFailed):
    """The file or the mapping cannot be used (nothing was read or written)."""

    code = "import.refused"


# --- creating ---------------------------------------------------------------------------------------


def import_create(
    *,
    file,
    name: str = "",
    mapping: dict,
    fmt: str = "",
    encoding: str = "",
    delimiter: str = "",
    dry_run: bool = False,
    source: str,
    actor: str = "",
) -> ImportJob:
    """Check the mapping against the file, store the file in Django's storage and make the job (not run).

    ``file`` is any binary file object (an upload, an open file). Raises ``MappingInvalid`` or ``ImportRefused``.
    """
    name = name or getattr(file, "name", "") or "import"
    compiled = mapping_compile(mapping)
    if hasattr(file, "seek"):
        file.seek(0)
    head = file.read(4096)
    file.seek(0)
    fmt = fmt or format_guess(name, head)
    if fmt not in Format.values:
        raise ImportRefused(f"Unknown format {fmt!r}; use {', '.join(Format.values)}.", field="format")
    if delimiter and len(delimiter) != 1:
        raise ImportRefused("delimiter is one character.", field="delimiter")
    if fmt == "xml" and not compiled.record:
        raise MappingInvalid(
            'An XML import needs "record" in the mapping: the element that holds one profile.', field="mapping.record"
        )
    if fmt == "csv":
        try:
            detected = detect_csv(file, encoding=encoding, delimiter=delimiter)
        except FileUnusable as exc:
            raise ImportRefused(str(exc), field="file") from None
        missing = [source for source in compiled.sources if source not in detected.header]
        if missing:
            raise MappingInvalid(
                f"Column(s) not in the file's header: {', '.join(missing)} (the header has: "
                f"{', '.join(detected.header)}).",
                field=f"mapping.columns.{missing[0]}",
            )
        encoding, delimiter = detected.encoding, detected.delimiter
        file.seek(0)
    with transaction.atomic():
        job = Job.objects.create(kind=IMPORT_JOB_KIND, payload={}, source=source, actor=actor)
        stored = default_storage.save(f"imports/{job.pk}/{_safe_name(name)}", file)
        return ImportJob.objects.create(
            job=job,
            file=stored,
            original_name=name[:255],
            size=default_storage.size(stored),
            format=fmt,
            encoding=encoding,
            delimiter=delimiter,
            mapping=mapping,
            dry_run=dry_run,
        )


def _safe_name(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(c if c.isalnum() or c in "._-" else "_" for c in base).strip("._")
    return (cleaned or "import")[:100]


def import_submit(**kwargs) -> ImportJob:
    """``import_create``, then queue the run for the worker (after commit)."""
    with transaction.atomic():
        imp = import_create(**kwargs)
        transaction.on_commit(lambda: run_import.enqueue(str(imp.pk)))
    return imp


def import_get(*, job_id) -> ImportJob:
    imp = ImportJob.objects.select_related("job").filter(pk=job_id).first()
    if imp is None:
        raise NotFound(f"No import job {job_id}.", field="jobId", code="import.not_found")
    return imp


# --- running ----------------------------------------------------------------------------------------


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


@contextmanager
def _opened(imp: ImportJob, mapping: Mapping):
    """The job's records, streamed from the storage, with the byte counter for progress."""
    with default_storage.open(imp.file.name, "rb") as handle:
        counting = CountingReader(handle)
        stream = io.BufferedReader(counting, buffer_size=256 * 1024)
        reader = READERS[imp.format]
        records = reader(stream, encoding=imp.encoding, delimiter=imp.delimiter, record=mapping.record)
        try:
            yield records, counting
        finally:
            records.close()


def _chunks(records, skip: int, size: int):
    """Lists of ``size`` records after the first ``skip`` (a resumed pass reads again up to its checkpoint)."""
    chunk = []
    for position, record in enumerate(records):
        if position < skip:
            continue
        chunk.append(record)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    yield chunk


def _key(identifiers: dict) -> str:
    """The line's strongest identifier (``IDENTIFIER_PRIORITY``), canonical enough to find the same person twice
    in a file; full validation is the batch's (an invalid value fails its line there, with its line number)."""
    for kind in settings.IDENTIFIER_PRIORITY:
        value = identifiers.get(kind)
        if value in (None, ""):
            continue
        text = str(value).strip()
        if kind == "email":
            return f"email:{text.lower()}"
        if kind == "customId":
            return f"customId:{text}"
        return f"{kind}:{identifier_normalize(kind, value)}"
    raise RowInvalid(
        "A profile needs at least one identifier: email, phone, uuid or customId.",
        field="identifiers",
        code="identifier.missing",
    )


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


def _issue(imp, kind, line, error, original) -> Issue:
    if isinstance(error, dict):
        code, field, message = error.get("code", ""), error.get("field") or "", error.get("message", "")
    else:
        code, field, message = getattr(error, "code", ""), getattr(error, "field", "") or "", error.message
    return Issue(
        job=imp,
        kind=kind,
        line=line,
        code=code or "import.value",
        field=field[:256],
        message=message,
        original=original,
    )


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


ISSUE_FIELDS = ("kind", "line", "code", "field", "message", "original")


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


def _superseded(imp, line: int, by: int, original: str) -> Issue:
    return Issue(
        job=imp,
        kind=Issue.Kind.WARNING,
        line=line,
        code="import.superseded",
        field="",
        message=f"Superseded by line {by}, which names the same profile (the last line wins).",
        original=original,
    )


@task(queue_name=BATCHES)
def run_import(job_id: str) -> dict:
    request_id = Job.objects.filter(pk=job_id).values_list("request_id", flat=True).first()
    with request_id_scope(request_id):
        try:
            imp = import_run(job_id=job_id)
        except (FileUnusable, MappingInvalid, DryRunBusy):
            imp = import_get(job_id=job_id)  # the job says why; nothing to retry
    return {"job": str(imp.pk), "status": imp.job.status, "counts": imp.job.counts}


# --- reading the outcome ----------------------------------------------------------------------------


def import_progress(imp: ImportJob) -> dict:
    """Percentage, lines per second and elapsed seconds of a job: the first pass (finding each person's last line)
    weighs a tenth, the writing pass the rest."""
    job = imp.job
    if imp.phase == ImportJob.Phase.DONE or job.status == Job.Status.DONE:
        fraction = 1.0
    elif imp.phase == ImportJob.Phase.STAGING:
        fraction = 0.1 * min(1.0, imp.bytes_read / imp.size) if imp.size else 0.0
    else:
        fraction = 0.1 + 0.9 * (imp.records_written / imp.records_read if imp.records_read else 1.0)
    end = job.finished_at or timezone.now()
    elapsed = (end - job.started_at).total_seconds() if job.started_at else 0.0
    # Lines per second: read by the first pass while it runs, then written (both since the job started).
    lines = imp.records_read if imp.phase == ImportJob.Phase.STAGING else imp.records_written
    return {
        "percent": round(100 * fraction, 1),
        "rowsPerSecond": round(lines / elapsed, 1) if elapsed > 0 else 0.0,
        "elapsedSeconds": round(elapsed, 1),
        "phase": imp.phase,
    }


def import_report_rows(imp: ImportJob, *, kind: str | None = None) -> Iterator[list]:
    """The report's rows (errors first, then warnings, each by line), unbounded, streamed from the database."""
    issues = Issue.objects.filter(job=imp).order_by("kind", "line", "pk")
    if kind:
        issues = issues.filter(kind=kind)
    for issue in issues.values_list("line", "kind", "code", "field", "message", "original").iterator(chunk_size=2000):
        yield list(issue)


class _Echo:
    def write(self, value):
        return value


def import_report_csv(imp: ImportJob, *, kind: str | None = None) -> Iterator[str]:
    """The report as CSV text, line by line (spreadsheet formula characters at a cell start are neutralised)."""
    writer = csv.writer(_Echo())
    yield writer.writerow(REPORT_HEADER)
    for row in import_report_rows(imp, kind=kind):
        yield writer.writerow([_cell(value) for value in row])


def _cell(value):
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def report_write(imp: ImportJob, target) -> int:
    """Write the report to a text file object; returns the number of report lines."""
    count = -1
    for count, text in enumerate(import_report_csv(imp)):  # noqa: B007
        target.write(text)
    return count


__all__ = [
    "SOURCE",
    "DryRunBusy",
    "ImportRefused",
    "import_create",
    "import_get",
    "import_progress",
    "import_report_csv",
    "import_run",
    "import_submit",
    "report_write",
    "run_import",
]


DRAFTS = "imports/drafts"


def drafts_purge(*, older_than: timedelta = timedelta(days=1)) -> int:
    """Delete the wizard's uploads (one folder each) older than ``older_than``: abandoned before a run."""
    if not default_storage.exists(DRAFTS):
        return 0
    cutoff = timezone.now() - older_than
    deleted = 0
    folders, _ = default_storage.listdir(DRAFTS)
    for folder in folders:
        _, files = default_storage.listdir(f"{DRAFTS}/{folder}")
        for name in files:
            path = f"{DRAFTS}/{folder}/{name}"
            if default_storage.get_modified_time(path) < cutoff:
                default_storage.delete(path)
                deleted += 1
    return deleted
