"""The Celery application, for ``TASKS_BACKEND=django_tasks_celery.CeleryBackend``.

The tasks are the project's ordinary ``django.tasks`` tasks; django-tasks-celery registers each with this
app when its module is imported (at Django's start-up, in web and worker processes alike). Start workers
with ``celery -A crm worker -Q default,batches,deliveries,recurring`` (or a few of the queues per machine).
Settings come from Django's, ``CELERY_*`` (``crm/settings.py``).
"""

import os

from celery import Celery
from celery.signals import worker_process_init, worker_ready, worker_shutdown

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")

app = Celery("crm")
app.config_from_object("django.conf:settings", namespace="CELERY")


@worker_ready.connect
def _worker_ready(sender, **kwargs):
    """Plan the recurring tasks that have no run planned, and start the worker's heartbeat."""
    from crm.heartbeat import heartbeat_start
    from crm.recurring import recurring_schedule

    recurring_schedule()
    heartbeat_start(kind="celery", queues=sorted(sender.app.amqp.queues.consume_from))


@worker_process_init.connect
def _worker_process_init(**kwargs):
    """Each pool process, once started: what Django loaded lives as long as it does (crm/startup.py); its pool's
    figures are sampled for the metrics (crm/metrics.py)."""
    from crm.metrics import metrics_sampler_start
    from crm.startup import startup_objects_freeze

    startup_objects_freeze()
    metrics_sampler_start()


@worker_shutdown.connect
def _worker_shutdown(**kwargs):
    from crm.heartbeat import heartbeat_stop

    heartbeat_stop()
