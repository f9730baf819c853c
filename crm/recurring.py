"""Recurring worker tasks, defined once and run by whatever ``django.tasks`` backend is configured.

A recurring task is an ordinary ``@task`` registered with ``@recurring(every=…)``. It keeps itself going
through the framework alone: when a run finishes (successfully or not) the ``task_finished`` receiver
enqueues the next one with ``run_after`` (django-tasks-db stores it; a Celery backend turns it into an
ETA), and ``recurring_schedule()`` (called when ``manage.py db_worker`` or a Celery worker starts) enqueues
a first run of every task that has none pending. django-tasks-db has no periodic scheduler of its own, and
none is needed beyond this (Celery beat neither: its schedule would be a second definition of the same).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection, transaction
from django.tasks import Task
from django.tasks.signals import task_finished
from django.utils import timezone

# A fixed key for the advisory lock that keeps two starting workers from both scheduling a first run.
_LOCK_KEY = 0x7265637572  # "recur"
_PLAN_GRACE = timedelta(minutes=10)


@dataclass(frozen=True)
class Recurring:
    task: Task
    every: Callable[[], timedelta]


_registry: dict[str, Recurring] = {}


def recurring(*, every: timedelta | Callable[[], timedelta]):
    """Register a task to run every ``every`` (a timedelta, or a function returning one so a setting is read
    when the next run is planned)."""

    def register(task: Task) -> Task:
        _registry[task.module_path] = Recurring(task=task, every=every if callable(every) else (lambda: every))
        return task

    return register


def recurring_tasks() -> list[Recurring]:
    return list(_registry.values())


def _pending_paths() -> set[str]:
    """Task paths with a run waiting in the database backend (a run left RUNNING by a killed worker does not
    count: it will never finish to schedule the next)."""
    from django_tasks_db.models import DBTaskResult

    return set(
        DBTaskResult.objects.filter(task_path__in=list(_registry), status="READY").values_list("task_path", flat=True)
    )


def _is_database_backend(task: Task) -> bool:
    from django_tasks_db.backend import DatabaseBackend

    return isinstance(task.get_backend(), DatabaseBackend)


def _planned_paths() -> set[str]:
    """For other backends: task paths whose planned next run is still to come (or recently due)."""
    from crm.models import RecurringPlan

    now = timezone.now()
    plans = RecurringPlan.objects.filter(task_path__in=list(_registry))
    # A plan long past its time lost its run (a message dropped with its broker): plan again.
    return {p.task_path for p in plans if p.run_after > now - _registry[p.task_path].every() - _PLAN_GRACE}


def _plan(path: str, run_after) -> None:
    from crm.models import RecurringPlan

    RecurringPlan.objects.update_or_create(
        task_path=path, defaults={"run_after": run_after, "enqueued_at": timezone.now()}
    )


def _lock() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])


def recurring_schedule() -> list[str]:
    """Enqueue a first run (now) of every recurring task that has none pending; returns their paths.

    The database backend is asked what is pending; for other backends (Celery) the planned runs are kept in
    ``RecurringPlan``. ``manage.py db_worker`` and every Celery worker call this when they start.
    """
    scheduled = []
    with transaction.atomic():
        _lock()
        is_db = all(_is_database_backend(r.task) for r in _registry.values())
        pending = _pending_paths() if is_db else _planned_paths()
        for path, entry in _registry.items():
            if path not in pending:
                entry.task.enqueue()
                if not is_db:
                    _plan(path, timezone.now())
                scheduled.append(path)
    return scheduled


def _schedule_next(sender, task_result, **kwargs) -> None:
    entry = _registry.get(task_result.task.module_path)
    if entry is None:
        return
    path = task_result.task.module_path
    with transaction.atomic():
        _lock()
        run_after = timezone.now() + entry.every()
        if _is_database_backend(entry.task):
            if path in _pending_paths():
                return  # a run is already planned (two workers started at once): keep one
        else:
            from crm.models import RecurringPlan

            if RecurringPlan.objects.filter(task_path=path, run_after__gt=timezone.now()).exists():
                return  # another chain planned the next run already: keep one
            _plan(path, run_after)
        entry.task.using(run_after=run_after).enqueue()


task_finished.connect(_schedule_next, dispatch_uid="crm.recurring.schedule_next")
