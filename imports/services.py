"""File imports: create a job from a file and a mapping, and run it (stage, then write through the batch path).

A run has two phases, each committed chunk by chunk together with its checkpoint, so a run cut off (a worker
killed with SIGKILL) resumes where it stopped when run again, neither losing nor doubling a line:

1. **Staging**: the reader streams records, the mapping turns each into a ``ProfileInput``, and it is staged
   under its strongest identifier (``IDENTIFIER_PRIORITY``). A later line with the same identifier replaces the
   staged row (the last line wins for the whole file, whatever the chunking); the earlier line is reported as
   a superseded warning. Lines that cannot be mapped are reported as errors.
2. **Writing**: the staged rows, in the order of their lines, go through ``profiles_upsert_many`` (identity
   resolution, merges, set-based consents and tags, system events in bulk) ``IMPORT_CHUNK_ROWS`` at a time.
   A dry run does the same inside a savepoint it rolls back: the report says what would happen, nothing stays.

The writes' actor is ``import:<job id>``; the job's own ``actor`` is who submitted it.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Callable, Iterator

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.tasks import task
from django.utils import timezone

from crm.actors import actor_of
from crm.errors import DomainError, NotFound, ValidationFailed
from crm.models import Job
from crm.request_id import request_id_scope
from imports.mapping import Mapping, MappingInvalid, RowInvalid, mapping_compile
from imports.models import IMPORT_JOB_KIND, Format, ImportJob, Issue, StagedRow
from imports.readers import READERS, CountingReader, FileUnusable, detect_csv, format_guess
from imports.signals import import_finished
from profiles.normalize import identifier_normalize
from profiles.services.batch import profile_input_from_json, profile_input_to_json, profiles_upsert_many

logger = logging.getLogger(__name__)

SOURCE = "import"
COUNT_KEYS = ("created", "updated", "merged", "unchanged", "failed", "superseded", "warnings")
REPORT_HEADER = ["line", "kind", "code", "field", "message", "original"]


class ImportRefused(ValidationFailed):
    """The file or the mapping cannot be used (nothing was read or written)."""

    code = "import.refused"


class _RollBack(Exception):
    """Undoes a dry run's chunk."""


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
    """Run (or run again) an import job. A cut-off run resumes after its last committed chunk; a finished one
    starts over (its lines come out unchanged). A file that turns out unusable fails the job (``FileUnusable``
    is raised after the job records why)."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id, kind=IMPORT_JOB_KIND)
        imp = ImportJob.objects.get(pk=job_id)
        if job.status == Job.Status.DONE or imp.phase == ImportJob.Phase.DONE:
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
        _write(imp, progress)
    except Exception as exc:
        if not connection.in_atomic_block and connection.connection is not None and not connection.is_usable():
            connection.close()  # a dropped connection: recording the failure takes a new one
        if isinstance(exc, FileUnusable | MappingInvalid):
            message = str(exc) if isinstance(exc, FileUnusable) else f"{exc.message} ({exc.field})"
        else:
            logger.exception("import %s failed after %s records", imp.pk, imp.records_read)
            message = (
                f"{type(exc).__name__}: {exc}. Records after {imp.records_read} (reading) or after line "
                f"{imp.written_line} (writing) were not applied; run the import again to finish them."
            )
        Job.objects.filter(pk=imp.pk).update(status=Job.Status.FAILED, message=message, finished_at=timezone.now())
        imp.job.refresh_from_db()
        _finished(imp)
        raise
    with transaction.atomic():
        StagedRow.objects.filter(job=imp).delete()
        imp.phase = ImportJob.Phase.DONE
        imp.save(update_fields=["phase"])
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
    imp.records_read = imp.bytes_read = imp.staged = imp.written = imp.written_line = 0
    imp.save()


def _records(imp: ImportJob, mapping: Mapping, stream) -> Iterator:
    reader = READERS[imp.format]
    return reader(stream, encoding=imp.encoding, delimiter=imp.delimiter, record=mapping.record)


def _stage(imp: ImportJob, mapping: Mapping, progress) -> None:
    size = max(1, settings.IMPORT_CHUNK_ROWS)
    with default_storage.open(imp.file.name, "rb") as handle:
        counting = CountingReader(handle)
        stream = io.BufferedReader(counting, buffer_size=256 * 1024)
        skip = imp.records_read
        chunk = []
        for position, record in enumerate(_records(imp, mapping, stream)):
            if position < skip:
                continue
            chunk.append(record)
            if len(chunk) >= size:
                _stage_chunk(imp, mapping, chunk, counting.count)
                chunk = []
                if progress:
                    progress(imp)
        _stage_chunk(imp, mapping, chunk, counting.count)
    with transaction.atomic():
        imp.phase = ImportJob.Phase.WRITING
        imp.save(update_fields=["phase"])


def _key(data) -> str:
    """The staged row's key: its strongest identifier, normalised (the same person twice in a file has one)."""
    present = {kind: value for kind, value in data.identifiers.items() if value not in (None, "")}
    for kind in settings.IDENTIFIER_PRIORITY:
        if kind in present:
            return f"{kind}:{identifier_normalize(kind, present[kind])}"
    raise RowInvalid(
        "A profile needs at least one identifier: email, phone, uuid or customId.",
        field="identifiers",
        code="identifier.missing",
    )


def _stage_chunk(imp: ImportJob, mapping: Mapping, chunk: list, bytes_read: int) -> None:
    job = imp.job
    staged: dict[str, tuple[int, dict, str]] = {}
    issues: list[Issue] = []
    counts = job.counts
    for record in chunk:
        try:
            data = mapping.apply(record.data)
            key = _key(data)
            for kind, value in data.identifiers.items():
                if value not in (None, ""):
                    identifier_normalize(kind, value)  # a bad secondary identifier fails the line here
        except (RowInvalid, DomainError) as error:
            issues.append(_issue(imp, Issue.Kind.ERROR, record.line, error, record.original))
            counts["failed"] += 1
            continue
        if key in staged:
            earlier = staged[key]
            issues.append(_superseded(imp, earlier[0], record.line, earlier[2]))
            counts["superseded"] += 1
        staged[key] = (record.line, profile_input_to_json(data), record.original)
    with transaction.atomic():
        if staged:
            with connection.cursor() as cursor:
                cursor.execute(
                    """
                    WITH t AS (
                        SELECT * FROM json_to_recordset(%s::json)
                        AS t(key text, line integer, data jsonb, original text)
                    ), old AS (
                        SELECT s.key, s.line, s.original FROM imports_stagedrow s JOIN t ON s.key = t.key
                        WHERE s.job_id = %s
                    ), up AS (
                        INSERT INTO imports_stagedrow (job_id, key, line, data, original)
                        SELECT %s, key, line, data, original FROM t
                        ON CONFLICT (job_id, key) DO UPDATE
                        SET line = EXCLUDED.line, data = EXCLUDED.data, original = EXCLUDED.original
                    )
                    SELECT old.key, old.line, old.original FROM old
                    """,
                    [
                        json.dumps(
                            [{"key": k, "line": v[0], "data": v[1], "original": v[2]} for k, v in staged.items()],
                            separators=(",", ":"),
                            default=str,
                        ),
                        imp.pk,
                        imp.pk,
                    ],
                )
                replaced = cursor.fetchall()
            for key, line, original in replaced:
                issues.append(_superseded(imp, line, staged[key][0], original))
            counts["superseded"] += len(replaced)
            imp.staged += len(staged) - len(replaced)
        if issues:
            Issue.objects.bulk_create(issues)
        counts["warnings"] = counts.get("warnings", 0) + sum(1 for i in issues if i.kind == Issue.Kind.WARNING)
        imp.records_read += len(chunk)
        imp.bytes_read = bytes_read
        imp.save(update_fields=["records_read", "bytes_read", "staged"])
        job.processed = imp.records_read
        job.save(update_fields=["processed", "counts"])


def _issue(imp, kind, line, error, original) -> Issue:
    return Issue(
        job=imp,
        kind=kind,
        line=line,
        code=getattr(error, "code", "import.value") or "import.value",
        field=(getattr(error, "field", "") or "")[:256],
        message=getattr(error, "message", str(error)),
        original=original,
    )


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


def _write(imp: ImportJob, progress) -> None:
    size = max(1, settings.IMPORT_CHUNK_ROWS)
    actor = actor_of(import_id=imp.pk)
    job = imp.job
    while True:
        rows = list(
            StagedRow.objects.filter(job=imp, line__gt=imp.written_line)
            .order_by("line")
            .values_list("line", "data", "original")[:size]
        )
        if not rows:
            return
        items = [profile_input_from_json(data) for _, data, _ in rows]
        with transaction.atomic():
            if imp.dry_run:
                try:
                    with transaction.atomic():
                        results = profiles_upsert_many(items=items, source=SOURCE, actor=actor)
                        raise _RollBack
                except _RollBack:
                    pass
            else:
                results = profiles_upsert_many(items=items, source=SOURCE, actor=actor)
            issues = []
            for (line, _, original), result in zip(rows, results, strict=True):
                job.counts[result.status] += 1
                if result.error:
                    issues.append(_issue_dict(imp, Issue.Kind.ERROR, line, result.error, original))
                for warning in result.warnings:
                    issues.append(_issue_dict(imp, Issue.Kind.WARNING, line, warning, original))
                    job.counts["warnings"] += 1
            if issues:
                Issue.objects.bulk_create(issues)
            imp.written += len(rows)
            imp.written_line = rows[-1][0]
            imp.save(update_fields=["written", "written_line"])
            job.save(update_fields=["counts"])
        if progress:
            progress(imp)


def _issue_dict(imp, kind, line, error: dict, original) -> Issue:
    return Issue(
        job=imp,
        kind=kind,
        line=line,
        code=error.get("code", ""),
        field=(error.get("field") or "")[:256],
        message=error.get("message", ""),
        original=original,
    )


@task
def run_import(job_id: str) -> dict:
    request_id = Job.objects.filter(pk=job_id).values_list("request_id", flat=True).first()
    with request_id_scope(request_id):
        try:
            imp = import_run(job_id=job_id)
        except (FileUnusable, MappingInvalid):
            imp = import_get(job_id=job_id)  # the job says why; nothing to retry
    return {"job": str(imp.pk), "status": imp.job.status, "counts": imp.job.counts}


# --- reading the outcome ----------------------------------------------------------------------------


def import_progress(imp: ImportJob) -> dict:
    """Percentage, rows per second and elapsed seconds of a job (reading weighs a quarter, writing the rest)."""
    job = imp.job
    if imp.phase == ImportJob.Phase.DONE or job.status == Job.Status.DONE:
        fraction = 1.0
    elif imp.phase == ImportJob.Phase.STAGING:
        fraction = 0.25 * min(1.0, imp.bytes_read / imp.size) if imp.size else 0.0
    else:
        fraction = 0.25 + 0.75 * (imp.written / imp.staged if imp.staged else 1.0)
    end = job.finished_at or timezone.now()
    elapsed = (end - job.started_at).total_seconds() if job.started_at else 0.0
    lines = imp.records_read if imp.phase == ImportJob.Phase.STAGING else imp.records_read * fraction
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
