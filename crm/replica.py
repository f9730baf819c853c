"""Reads that may be served by a read replica (``DATABASE_REPLICA_URL``), and the router that sends them there.

Only reads that say so go to the replica: ``with replica_reads():`` (or ``@replica_reads()``) around a
selector that answers a lookup, a list, an export or a count. Inside it, the ORM reads from the ``replica``
alias (``ReplicaRouter``) and raw SQL takes ``read_connection()``. Everything else reads from the primary,
and so does anything inside a transaction on the primary (a write's own reads see the write), even within
``replica_reads``. Writes always go to the primary. Without ``DATABASE_REPLICA_URL`` there is no replica
alias and everything runs on the primary.

A replica trails the primary by its replication lag (``/health`` reports it): a profile read right after
its write may be the version before it, for that long.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

REPLICA = "replica"

_replica_reads: ContextVar[bool] = ContextVar("replica_reads", default=False)


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


@contextmanager
def replica_reads():
    """Reads in this block may come from the replica (lookups, lists, exports, counts: never a write's reads)."""
    token = _replica_reads.set(True)
    try:
        yield
    finally:
        _replica_reads.reset(token)


def read_alias() -> str:
    """The database alias a read should use here: the replica inside ``replica_reads`` outside any transaction
    on the primary, else the primary."""
    if _replica_reads.get() and replica_configured() and not connections[DEFAULT_DB_ALIAS].in_atomic_block:
        return REPLICA
    return DEFAULT_DB_ALIAS


def read_connection():
    return connections[read_alias()]


class ReplicaRouter:
    """Django's database router: reads marked by ``replica_reads`` to the replica, all writes to the primary."""

    def db_for_read(self, model, **hints):
        return read_alias()

    def db_for_write(self, model, **hints):
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        return True  # one database, two servers

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == DEFAULT_DB_ALIAS  # the replica follows the primary's schema by streaming
