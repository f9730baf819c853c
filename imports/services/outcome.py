"""Reading an import's outcome: its progress document and its report (the failed and warned lines)."""

from __future__ import annotations

import csv
from collections.abc import Iterator

from django.utils import timezone

from crm.models import Job
from imports.models import ImportJob, Issue
from imports.services.common import (
    REPORT_HEADER,
)


def import_progress(*, imp: ImportJob) -> dict:
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


def import_report_rows(*, imp: ImportJob, kind: str | None = None) -> Iterator[list]:
    """The report's rows (errors first, then warnings, each by line), unbounded, streamed from the database."""
    issues = Issue.objects.filter(job=imp).order_by("kind", "line", "pk")
    if kind:
        issues = issues.filter(kind=kind)
    for issue in issues.values_list("line", "kind", "code", "field", "message", "original").iterator(chunk_size=2000):
        yield list(issue)


class _Echo:
    def write(self, value):
        return value


def import_report_csv(*, imp: ImportJob, kind: str | None = None) -> Iterator[str]:
    """The report as CSV text, line by line (spreadsheet formula characters at a cell start are neutralised)."""
    writer = csv.writer(_Echo())
    yield writer.writerow(REPORT_HEADER)
    for row in import_report_rows(imp=imp, kind=kind):
        yield writer.writerow([_cell(value) for value in row])


def _cell(value):
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def report_write(*, imp: ImportJob, target) -> int:
    """Write the report to a text file object; returns the number of report lines."""
    count = -1
    for count, text in enumerate(import_report_csv(imp=imp)):  # noqa: B007
        target.write(text)
    return count
