"""The task queues, one per kind of work, the same on every backend (the database worker and Celery).

A worker can take all of them (the default) or a few, so that a slow batch does not hold up the webhook
deliveries: ``manage.py db_worker --queue-name deliveries`` or ``celery -A crm worker -Q deliveries``.
"""

DEFAULT = "default"
BATCHES = "batches"  # batch upserts, file imports, RFM recomputation
DELIVERIES = "deliveries"  # outgoing messages: webhook deliveries, e-mails, scheduled export runs
RECURRING = "recurring"  # the recurring tasks of crm/recurring.py

ALL = [DEFAULT, BATCHES, DELIVERIES, RECURRING]
