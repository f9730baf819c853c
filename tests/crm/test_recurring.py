"""Recurring worker tasks: one definition, planned on the database backend through run_after, and the purge
of idempotency records, finished jobs and task results after their retention."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from crm.models import IdempotencyRecord, Job
from crm.recurring import recurring_schedule, recurring_tasks
from crm.services import expired_purge
from crm.tasks import purge_expired

PURGE = purge_expired.module_path


def test_the_purge_is_a_registered_recurring_task():
    assert PURGE in {r.task.module_path for r in recurring_tasks()}


@pytest.mark.django_db(transaction=True)
def test_scheduling_plans_one_run_however_often_it_is_called():
    assert PURGE in recurring_schedule()
    assert recurring_schedule() == []
    assert DBTaskResult.objects.filter(task_path=PURGE, status="READY").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_finished_run_plans_the_next_one_interval_later(settings):
    from django.core.management import call_command

    settings.PURGE_INTERVAL_SECONDS = 120
    recurring_schedule()
    before = timezone.now()
    call_command("db_worker", "--batch", "--no-startup-delay", "--queue-name", "recurring")
    done = DBTaskResult.objects.get(task_path=PURGE, status="SUCCESSFUL")
    assert done.return_value == {"idempotencyRecords": 0, "jobs": 0, "taskResults": 0}
    following = DBTaskResult.objects.get(task_path=PURGE, status="READY")
    assert before + timedelta(seconds=110) < following.run_after < timezone.now() + timedelta(seconds=130)


@pytest.mark.django_db
def test_purge_deletes_only_what_outlived_its_retention(settings):
    settings.IDEMPOTENCY_TTL_SECONDS = 3600
    settings.JOB_RETENTION_DAYS = 7
    now = timezone.now()
    old_record = IdempotencyRecord.objects.create(key="a", scope="s", request_hash="h")
    fresh_record = IdempotencyRecord.objects.create(key="b", scope="s", request_hash="h")
    IdempotencyRecord.objects.filter(pk=old_record.pk).update(created_at=now - timedelta(hours=2))
    old_done = Job.objects.create(kind="x", source="t", status=Job.Status.DONE, finished_at=now - timedelta(days=8))
    old_failed = Job.objects.create(kind="x", source="t", status=Job.Status.FAILED, finished_at=now - timedelta(days=9))
    recent = Job.objects.create(kind="x", source="t", status=Job.Status.DONE, finished_at=now - timedelta(days=1))
    stuck = Job.objects.create(kind="x", source="t", status=Job.Status.RUNNING)
    assert expired_purge() == {"idempotencyRecords": 1, "jobs": 2, "taskResults": 0}
    assert list(IdempotencyRecord.objects.values_list("pk", flat=True)) == [fresh_record.pk]
    assert set(Job.objects.values_list("pk", flat=True)) == {recent.pk, stuck.pk}
    assert not Job.objects.filter(pk__in=[old_done.pk, old_failed.pk]).exists()
