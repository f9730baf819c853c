"""The exports app's worker tasks: the recurring dispatcher (runs every due export) and one export's run."""

from datetime import timedelta

from django.conf import settings
from django.tasks import task

from crm.queues import DELIVERIES, RECURRING
from crm.recurring import recurring
from exports.services import exports_dispatch, scheduled_export_run


@recurring(every=lambda: timedelta(seconds=settings.EXPORT_SCHEDULER_INTERVAL_SECONDS))
@task(queue_name=RECURRING)
def scheduled_exports_dispatch() -> list[int]:
    """Queue a run of every scheduled export whose time (or retry time) has come."""
    return exports_dispatch()


@task(queue_name=DELIVERIES)
def scheduled_export_run_task(export_id: int, trigger: str, actor: str = "system") -> dict | None:
    run = scheduled_export_run(export_id=export_id, trigger=trigger, actor=actor)
    if run is None:
        return None
    return {"run": run.pk, "outcome": run.outcome, "rows": run.rows, "bytes": run.bytes}
