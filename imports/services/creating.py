"""Creating an import: check the mapping against the file, store the file, make the job (not run); and the
purge of abandoned drafts."""

from __future__ import annotations

from datetime import timedelta

from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from crm.errors import NotFound
from crm.models import Job
from imports.mapping import MappingInvalid, mapping_compile
from imports.models import IMPORT_JOB_KIND, Format, ImportJob
from imports.readers import FileUnusable, SheetMissing, detect_csv, format_guess, xlsx_header
from imports.services.common import (
    ImportRefused,
)


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
    if fmt in ("csv", "xlsx"):
        try:
            if fmt == "csv":
                detected = detect_csv(file, encoding=encoding, delimiter=delimiter)
                header = detected.header
                encoding, delimiter = detected.encoding, detected.delimiter
            else:
                header = xlsx_header(file, sheet=compiled.sheet)
                encoding = delimiter = ""
        except FileUnusable as exc:
            raise ImportRefused(str(exc), field="mapping.sheet" if isinstance(exc, SheetMissing) else "file") from None
        missing = [source for source in compiled.sources if source not in header]
        if missing:
            raise MappingInvalid(
                f"Column(s) not in the file's header: {', '.join(missing)} (the header has: {', '.join(header)}).",
                field=f"mapping.columns.{missing[0]}",
            )
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
    from imports.tasks import run_import

    with transaction.atomic():
        imp = import_create(**kwargs)
        transaction.on_commit(lambda: run_import.enqueue(str(imp.pk)))
    return imp


def import_get(*, job_id) -> ImportJob:
    imp = ImportJob.objects.select_related("job").filter(pk=job_id).first()
    if imp is None:
        raise NotFound(f"No import job {job_id}.", field="jobId", code="import.not_found")
    return imp


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
