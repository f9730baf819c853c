"""Tasks now live in each app's ``tasks.py``: results queued under a task's old module path are renamed, so a
worker upgraded with jobs still queued finds them (the database backend looks a task up by its path)."""

from django.db import migrations

MOVED = {
    "consents.mail.confirmation_emails_send": "consents.tasks.confirmation_emails_send",
    "exports.services.scheduled_exports_dispatch": "exports.tasks.scheduled_exports_dispatch",
    "exports.services.scheduled_export_run_task": "exports.tasks.scheduled_export_run_task",
    "imports.services.run_import": "imports.tasks.run_import",
    "profiles.partitions.event_partitions_maintain": "profiles.tasks.event_partitions_maintain",
    "profiles.services.batch.run_profile_batch": "profiles.tasks.run_profile_batch",
    "profiles.services.transactions.rfm_recompute": "profiles.tasks.rfm_recompute",
    "segments.membership.segments_refresh_touched_task": "segments.tasks.segments_refresh_touched_task",
    "segments.membership.segment_fill_task": "segments.tasks.segment_fill_task",
    "segments.membership.segments_refresh_commerce_task": "segments.tasks.segments_refresh_commerce_task",
    "segments.membership.segments_refresh_time_relative_task": "segments.tasks.segments_refresh_time_relative_task",
}


def rename(apps, schema_editor, moves=MOVED):
    result = apps.get_model("django_tasks_database", "DBTaskResult")
    for old, new in moves.items():
        result.objects.filter(task_path=old).update(task_path=new)


def rename_back(apps, schema_editor):
    rename(apps, schema_editor, moves={new: old for old, new in MOVED.items()})


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0010_worker_heartbeats"),
        ("django_tasks_database", "0021_conditional_partial_index_ordering"),
    ]

    operations = [migrations.RunPython(rename, rename_back)]
