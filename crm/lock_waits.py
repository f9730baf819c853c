"""Bounded waits for row locks on the request path.

A write that meets a row another transaction holds waits for it. Most holds last milliseconds, but some last
minutes: an import's dry run holds what it would change until it ends, a large merge or erasure until it commits.
An API write would then hang past any client's or server's timeout; with ``lock_wait_limit`` it gives up after
``API_LOCK_TIMEOUT_SECONDS`` instead, and the surface answers 503 with ``Retry-After`` (code ``busy``), per item
where the surface reports per item (``api.base.ApiView`` sets it for every write). Background jobs keep waiting
as long as it takes.
"""

from __future__ import annotations

import psycopg.errors
from django.db import DatabaseError, connection

from crm.errors import DomainError

BUSY_MESSAGE = (
    "A profile this request changes is held by another operation (an import's dry run, a merge or an erasure); "
    "nothing was changed: retry shortly."
)


class Busy(DomainError):
    """A lock wait given up: nothing of the item (or request) was written."""

    status = 503
    code = "busy"

    def __init__(self, message: str = BUSY_MESSAGE, **kwargs):
        super().__init__(message, **kwargs)


def is_lock_timeout(exc: BaseException) -> bool:
    """Whether a database error is PostgreSQL giving up a lock wait (``lock_timeout``, SQLSTATE 55P03)."""
    while exc is not None:
        if isinstance(exc, psycopg.errors.LockNotAvailable):
            return True
        exc = exc.__cause__
    return False


def lock_wait_limit(seconds: float, *, transaction_only: bool = False) -> None:
    """From now on, the default connection's lock waits end after ``seconds``; undo with ``lock_wait_reset``
    (``transaction_only``: until the current transaction ends, then by itself)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('lock_timeout', %s, %s)", [f"{max(int(seconds * 1000), 1)}ms", transaction_only]
        )


def lock_wait_reset() -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
    except DatabaseError:  # the connection broke meanwhile: the pool replaces it, settings and all
        pass
