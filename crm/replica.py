"""Reads that may be served by a read replica (``DATABASE_REPLICA_URL``), and the router that sends them there.

Only reads that say so go to the replica: ``with replica_reads():`` (or ``@replica_reads()``) around a
selector that answers a lookup, a list, an export or a count. Inside it, the ORM reads from the ``replica``
alias (``ReplicaRouter``) and raw SQL takes ``read_connection()``. Everything else reads from the primary,
and so does anything inside a transaction on the primary (a write's own reads see the write), even within
``replica_reads``. Writes always go to the primary. Without ``DATABASE_REPLICA_URL`` there is no replica
alias and everything runs on the primary.

A replica trails the primary by its replication lag (``/health`` reports it): a profile read right after
its write may be the version before it, for that long. While the replica is further behind than
``REPLICA_MAX_LAG_SECONDS``, or cannot be reached, these reads go to the primary instead; each process asks the
replica its lag at most every ``REPLICA_LAG_CHECK_SECONDS``.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from contextvars import ContextVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

REPLICA = "replica"

logger = logging.getLogger(__name__)

# (in recovery, replay lag in seconds: 0 when all that was received is replayed, lag in bytes)
REPLICA_LAG_SQL = """
SELECT pg_is_in_recovery(),
       CASE WHEN pg_last_wal_receive_lsn() IS NULL OR pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END,
       coalesce(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0)
"""

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


def replica_lag() -> tuple[bool, float, int]:
    """(in recovery, lag in seconds, lag in bytes), asked of the replica; raises when it cannot be reached."""
    with connections[REPLICA].cursor() as cursor:
        cursor.execute(REPLICA_LAG_SQL)
        in_recovery, seconds, lag_bytes = cursor.fetchone()
    return bool(in_recovery), max(float(seconds or 0), 0.0), int(lag_bytes or 0)


_usable = {"checked_at": float("-inf"), "usable": True}


def replica_usable() -> bool:
    """Whether marked reads may go to the replica now: it answers, still follows the primary, and is at most
    ``REPLICA_MAX_LAG_SECONDS`` behind. Asked at most every ``REPLICA_LAG_CHECK_SECONDS`` per process; the
    answer is kept meanwhile."""
    now = time.monotonic()
    if now - _usable["checked_at"] < settings.REPLICA_LAG_CHECK_SECONDS:
        return _usable["usable"]
    _usable["checked_at"] = now
    try:
        in_recovery, seconds, _bytes = replica_lag()
        usable = in_recovery and seconds <= settings.REPLICA_MAX_LAG_SECONDS  # a promoted one no longer follows
    except Exception:
        seconds, usable = None, False
        connections[REPLICA].close()  # a broken connection is opened afresh at the next check
    if usable != _usable["usable"]:
        logger.warning("read replica %s", "usable again" if usable else f"not used: lag {seconds} s (or unreachable)")
    _usable["usable"] = usable
    return usable


def replica_usable_forget() -> None:
    """Ask the replica again at the next read (tests, and after a settings change)."""
    _usable["checked_at"] = float("-inf")


def read_alias() -> str:
    """The database alias a read should use here: the replica inside ``replica_reads`` outside any transaction
    on the primary, while the replica is usable (``replica_usable``); else the primary."""
    if (
        _replica_reads.get()
        and replica_configured()
        and not connections[DEFAULT_DB_ALIAS].in_atomic_block
        and replica_usable()
    ):
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
