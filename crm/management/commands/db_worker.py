"""``manage.py db_worker``: django-tasks-db's worker, after planning the first run of each recurring task.

The project's app comes before ``django_tasks_db`` in ``INSTALLED_APPS``, so this command is the one
``manage.py db_worker`` runs; every option is django-tasks-db's, except that it takes every queue
(``crm/queues.py``) unless ``--queue-name`` names some. While it runs, it writes a heartbeat (``/health``) and
keeps its metrics: in ``PROMETHEUS_MULTIPROC_DIR`` for the web's ``/metrics``, or on a port of its own with
``--metrics-port``.
"""

import os

from django.utils.autoreload import DJANGO_AUTORELOAD_ENV
from django_tasks_db.management.commands.db_worker import Command as DatabaseWorkerCommand

from crm.heartbeat import heartbeat_start, heartbeat_stop
from crm.metrics import metrics_port_serve, metrics_sampler_start
from crm.recurring import recurring_schedule
from crm.startup import startup_objects_freeze


class Command(DatabaseWorkerCommand):
    help = DatabaseWorkerCommand.help + " Plans the recurring tasks (crm/recurring.py) first."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.set_defaults(queue_name="*")
        parser.add_argument(
            "--metrics-port",
            type=int,
            default=0,
            help="serve this process's metrics on this port, on loopback (without PROMETHEUS_MULTIPROC_DIR)",
        )

    def handle(self, *args, **options):
        for path in recurring_schedule():
            self.stderr.write(f"Scheduled recurring task {path}")
        heartbeat_start(kind="db", queues=options["queue_name"].split(","))
        metrics_sampler_start()
        # With --reload (DEBUG's default) this runs in the watching process and again in the working child: the
        # child, which runs the tasks, serves the port.
        reloading_parent = (
            options.get("reload") and not options.get("batch") and not os.environ.get(DJANGO_AUTORELOAD_ENV)
        )
        if options["metrics_port"] and not reloading_parent:
            metrics_port_serve(options["metrics_port"])
        if not options.get("batch"):  # a long-running worker (--batch stops once the queues are empty)
            startup_objects_freeze()
        try:
            return super().handle(*args, **options)
        finally:
            heartbeat_stop()
