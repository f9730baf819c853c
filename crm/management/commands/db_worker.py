"""``manage.py db_worker``: django-tasks-db's worker, after planning the first run of each recurring task.

The project's app comes before ``django_tasks_db`` in ``INSTALLED_APPS``, so this command is the one
``manage.py db_worker`` runs; every option is django-tasks-db's, except that it takes every queue
(``crm/queues.py``) unless ``--queue-name`` names some. While it runs, it writes a heartbeat (``/health``).
"""

from django_tasks_db.management.commands.db_worker import Command as DatabaseWorkerCommand

from crm.heartbeat import heartbeat_start, heartbeat_stop
from crm.recurring import recurring_schedule
from crm.startup import startup_objects_freeze


class Command(DatabaseWorkerCommand):
    help = DatabaseWorkerCommand.help + " Plans the recurring tasks (crm/recurring.py) first."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.set_defaults(queue_name="*")

    def handle(self, *args, **options):
        for path in recurring_schedule():
            self.stderr.write(f"Scheduled recurring task {path}")
        heartbeat_start(kind="db", queues=options["queue_name"].split(","))
        if not options.get("batch"):  # a long-running worker (--batch stops once the queues are empty)
            startup_objects_freeze()
        try:
            return super().handle(*args, **options)
        finally:
            heartbeat_stop()
