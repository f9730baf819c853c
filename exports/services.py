"""Scheduled exports: saving one, planning runs, running one (spool the file, push it, log the run) and retries.

A run writes the export to a file in ``EXPORT_SPOOL_DIR`` first (the stream is read once, at the database's
pace, and a slow or failing target never holds a database snapshot open), then pushes the file: an HTTP POST
signed as Standard Webhooks sign webhooks, or an SFTP upload (``targets.py``). A failed run is tried again after
``EXPORT_RETRY_BASE_SECONDS`` × 2^(attempt − 1), up to ``EXPORT_MAX_ATTEMPTS`` attempts; then the export waits for
its next scheduled time. Two runs of one export never overlap (a session advisory lock per export).
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from crm.errors import DomainError, ValidationFailed
from crm.outbound import url_split
from exports.models import ExportRun, RunOutcome, Schedule, ScheduledExport, TargetKind
from exports.stream import ExportCounter, export_chunks, export_queryset

logger = logging.getLogger(__name__)

_LOCK_SPACE = 0x6578  # "ex": the advisory lock key space of export runs


def http_secret_generate() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 24 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def next_scheduled_time(*, export: ScheduledExport, after: datetime) -> datetime:
    """The first scheduled time strictly after ``after``: the next full hour, or the next ``daily_at``."""
    if export.schedule == Schedule.HOURLY:
        return after.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    local = timezone.localtime(after)
    candidate = local.replace(
        hour=export.daily_at.hour, minute=export.daily_at.minute, second=export.daily_at.second, microsecond=0
    )
    if candidate <= local:
        candidate = timezone.make_aware(candidate.replace(tzinfo=None) + timedelta(days=1))
    return candidate


def scheduled_export_save(*, export: ScheduledExport, actor: str = "") -> ScheduledExport:
    """Check and save an export: its filters must select (a wrong one is an error on ``filters``), its target
    complete; an HTTP export without a secret gets one; the next run is planned from now."""
    try:
        export_queryset(filters=export.filters, segment_id=export.segment_id)
    except DomainError as exc:
        field = "segment_id" if exc.field == "segment" else "filters"
        raise ValidationFailed(f"{exc.message}", field=field) from None
    if export.schedule == Schedule.DAILY and export.daily_at is None:
        raise ValidationFailed("A daily export needs its time of day.", field="daily_at")
    if export.target == TargetKind.HTTP:
        if not export.http_url:
            raise ValidationFailed("An HTTP export needs its URL.", field="http_url")
        url_split(export.http_url, field="http_url", refused=ValidationFailed)  # its address is checked at each run
        if not export.http_secret:
            export.http_secret = http_secret_generate()
        else:
            from exports.targets import signing_key

            signing_key(export.http_secret)  # a secret the receiver's library can read
    else:
        for name in ("sftp_host", "sftp_user", "sftp_path"):
            if not getattr(export, name):
                raise ValidationFailed(f"An SFTP export needs its {name.removeprefix('sftp_')}.", field=name)
        if not (export.sftp_password or export.sftp_private_key):
            raise ValidationFailed("An SFTP export needs a password or a private key.", field="sftp_password")
        if export.sftp_private_key:
            from exports.targets import private_key_load

            private_key_load(export.sftp_private_key)
    export.attempt = 0
    export.next_run_at = next_scheduled_time(export=export, after=timezone.now()) if export.is_active else None
    export.save()
    return export


# --- planning -------------------------------------------------------------------------------------------------


def exports_due_claim(*, now: datetime | None = None) -> list[tuple[int, str]]:
    """Exports whose time has come, claimed (their next time moved on, so no other worker takes them):
    ``(id, trigger)`` pairs, trigger ``schedule`` or ``retry``."""
    now = now or timezone.now()
    claimed = []
    with transaction.atomic():
        due = (
            ScheduledExport.objects.select_for_update(skip_locked=True)
            .filter(is_active=True, next_run_at__lte=now)
            .order_by("next_run_at")
        )
        for export in due:
            claimed.append((export.pk, "retry" if export.attempt else "schedule"))
            # Moved on now, so a worker that dies during the run does not stop the schedule.
            export.next_run_at = next_scheduled_time(export=export, after=now)
            export.save(update_fields=["next_run_at"])
    return claimed


def export_runs_abandoned_close(*, now: datetime | None = None) -> int:
    """Close the runs still marked running whose worker died (killed, or its machine gone): a live run holds its
    export's advisory lock, which PostgreSQL releases with the dead worker's connection. Returns how many."""
    now = now or timezone.now()
    closed = 0
    for export_id in set(ExportRun.objects.filter(outcome=RunOutcome.RUNNING).values_list("export_id", flat=True)):
        with _Lock(export_id) as held:
            if held:
                closed += ExportRun.objects.filter(export_id=export_id, outcome=RunOutcome.RUNNING).update(
                    outcome=RunOutcome.FAILED,
                    finished_at=now,
                    error="The worker running this export stopped before the run ended.",
                )
    return closed


def exports_dispatch() -> list[int]:
    """Enqueue a run of every due export (the recurring task's work); returns their ids. Runs left "running"
    by a worker that died are closed first."""
    from exports.tasks import scheduled_export_run_task

    export_runs_abandoned_close()
    claimed = exports_due_claim()
    for export_id, trigger in claimed:
        scheduled_export_run_task.enqueue(export_id, trigger)
    return [export_id for export_id, _ in claimed]


def scheduled_export_run_now(*, export: ScheduledExport, actor: str) -> None:
    """Queue a run at once (the admin's "Run now"); the worker runs it."""
    from exports.tasks import scheduled_export_run_task

    scheduled_export_run_task.enqueue(export.pk, "manual", actor)


# --- one run ----------------------------------------------------------------------------------------------------


@dataclass
class _Lock:
    export_id: int

    def __enter__(self) -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_LOCK_SPACE, self.export_id])
            self.held = cursor.fetchone()[0]
        return self.held

    def __exit__(self, *exc) -> None:
        if self.held:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_LOCK_SPACE, self.export_id])


def _retry_delay(attempt: int) -> timedelta:
    return timedelta(seconds=settings.EXPORT_RETRY_BASE_SECONDS * 2 ** (attempt - 1))


def scheduled_export_run(*, export_id: int, trigger: str = "manual", actor: str = "system") -> ExportRun | None:
    """Run an export once: spool, push, log. Returns the run (None when the export is gone)."""
    export = ScheduledExport.objects.filter(pk=export_id).first()
    if export is None:
        return None
    now = timezone.now()
    with _Lock(export.pk) as held:
        if not held:
            return ExportRun.objects.create(
                export=export,
                trigger=trigger,
                actor=actor,
                started_at=now,
                finished_at=now,
                outcome=RunOutcome.SKIPPED,
            )
        export.refresh_from_db()
        attempt = export.attempt + 1 if trigger == "retry" else 1
        changed_since = None
        if export.incremental and export.last_success_started_at is not None:
            # Rows committed a little after they were stamped: read back a margin (a profile may come twice).
            changed_since = export.last_success_started_at - timedelta(
                seconds=settings.EXPORT_INCREMENTAL_OVERLAP_SECONDS
            )
        run = ExportRun.objects.create(
            export=export, trigger=trigger, actor=actor, attempt=attempt, started_at=now, changed_since=changed_since
        )
        try:
            _run(export, run)
        except Exception as exc:
            logger.warning("export %s run %s failed: %s", export.pk, run.pk, exc, exc_info=True)
            _failed(export, run, exc)
        else:
            run.outcome = RunOutcome.SUCCEEDED
            run.finished_at = timezone.now()
            run.save()
            export.attempt = 0
            export.last_success_started_at = run.started_at
            export.save(update_fields=["attempt", "last_success_started_at"])
    return run


def _failed(export: ScheduledExport, run: ExportRun, exc: Exception) -> None:
    run.outcome = RunOutcome.FAILED
    run.finished_at = timezone.now()
    run.error = (getattr(exc, "message", None) or str(exc) or type(exc).__name__)[:4000]
    if run.attempt < settings.EXPORT_MAX_ATTEMPTS:
        run.retry_at = run.finished_at + _retry_delay(run.attempt)
        export.attempt = run.attempt
        export.next_run_at = run.retry_at
    else:
        export.attempt = 0
        export.next_run_at = next_scheduled_time(export=export, after=run.finished_at) if export.is_active else None
    run.save()
    export.save(update_fields=["attempt", "next_run_at"])


def _run(export: ScheduledExport, run: ExportRun) -> None:
    from exports.targets import push

    queryset = export_queryset(filters=export.filters, segment_id=export.segment_id, changed_since=run.changed_since)
    counter = ExportCounter()
    started = time.monotonic()
    spool_dir = settings.EXPORT_SPOOL_DIR or None
    if spool_dir:
        os.makedirs(spool_dir, exist_ok=True)
    with tempfile.NamedTemporaryFile(prefix=f"export-{export.pk}-", suffix=f".{export.format}", dir=spool_dir) as f:
        for chunk in export_chunks(queryset=queryset, fmt=export.format, bom=export.bom, counter=counter):
            f.write(chunk)
        f.flush()
        run.rows, run.bytes = counter.rows, f.tell()
        run.save(update_fields=["rows", "bytes"])
        f.seek(0)
        run.destination = push(export, f, size=run.bytes, run=run)
    logger.info(
        "export %s run %s: %s rows, %s bytes in %.1f s to %s",
        export.pk, run.pk, run.rows, run.bytes, time.monotonic() - started, run.destination,
    )  # fmt: skip
