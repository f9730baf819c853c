"""Monthly partitions of the events table: listed, created ahead, old ones detached.

``profiles_event`` is partitioned by range on ``time``, one partition per calendar month (UTC) named
``profiles_event_pYYYYMM``, plus a default partition for events outside every created month (a back-filled
event from years ago, say). The recurring task ``profiles.tasks.event_partitions_maintain`` keeps
``EVENT_PARTITIONS_AHEAD`` months ready beyond the current one, so new events never land in the default
partition, and gives the months of any events waiting there (history loaded later) partitions of their own,
moving the rows.

Old months leave with ``manage.py event_partitions detach --before YYYY-MM``: a detached partition is an
ordinary table again (dump it, archive it, ``--drop`` it), and the timeline and aggregates stop seeing its
events. Their salts stay in the dedup table, so a retry of such an old event still counts once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

PARENT = "profiles_event"
DEFAULT = "profiles_event_default"


@dataclass(frozen=True)
class Partition:
    name: str
    start: datetime | None  # None: the default partition
    end: datetime | None
    rows: int  # the planner's estimate (reltuples), 0 before the first ANALYZE


def month_start(value: datetime | date) -> datetime:
    return datetime(value.year, value.month, 1, tzinfo=UTC)


def month_next(start: datetime) -> datetime:
    return datetime(start.year + (start.month == 12), start.month % 12 + 1, 1, tzinfo=UTC)


def partition_name(start: datetime) -> str:
    return f"{PARENT}_p{start:%Y%m}"


def event_partitions() -> list[Partition]:
    """The events table's partitions, oldest first, the default partition last."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), greatest(c.reltuples, 0)::bigint
            FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = %s::regclass
            """,
            [PARENT],
        )
        rows = cursor.fetchall()
    partitions = []
    for name, bound, estimate in rows:
        if bound == "DEFAULT":
            partitions.append(Partition(name=name, start=None, end=None, rows=estimate))
            continue
        # e.g. FOR VALUES FROM ('2026-12-01 00:00:00+00') TO ('2027-01-01 00:00:00+00')
        low, high = (part.split("'")[1] for part in bound.split(" TO "))
        partitions.append(
            Partition(name=name, start=datetime.fromisoformat(low), end=datetime.fromisoformat(high), rows=estimate)
        )
    far = datetime.max.replace(tzinfo=UTC)
    return sorted(partitions, key=lambda p: p.start or far)


def event_partition_create(start: datetime) -> bool:
    """Create the partition of the month starting at ``start``; False when it exists.

    Events of that month waiting in the default partition move into the new one in the same transaction
    (PostgreSQL refuses to attach a month the default partition holds rows of).
    """
    start = month_start(start)
    end = month_next(start)
    name = partition_name(start)
    with transaction.atomic(), connection.cursor() as cursor:
        # Deferred foreign-key checks of rows this transaction wrote would block moving or detaching tables.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        if cursor.fetchone()[0]:
            return False
        cursor.execute(f"SELECT 1 FROM {DEFAULT} WHERE time >= %s AND time < %s LIMIT 1", [start, end])  # noqa: S608
        if cursor.fetchone() is None:
            cursor.execute(
                f"CREATE TABLE {name} PARTITION OF {PARENT} FOR VALUES FROM (%s) TO (%s)",
                [start, end],
            )
            return True
        cursor.execute(f"CREATE TABLE {name} (LIKE {PARENT} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        cursor.execute(
            f"""
            WITH moved AS (DELETE FROM {DEFAULT} WHERE time >= %s AND time < %s RETURNING *)
            INSERT INTO {name} SELECT * FROM moved
            """,  # noqa: S608 - fixed table names
            [start, end],
        )
        cursor.execute(f"ALTER TABLE {PARENT} ATTACH PARTITION {name} FOR VALUES FROM (%s) TO (%s)", [start, end])
    return True


def event_partitions_ensure(*, months_ahead: int | None = None, now: datetime | None = None) -> list[str]:
    """Create the current month's partition and ``months_ahead`` more (default ``EVENT_PARTITIONS_AHEAD``), and
    one for each month whose events wait in the default partition (history loaded after the migration, e.g.
    an import or the demo data), moving them there."""
    months_ahead = settings.EVENT_PARTITIONS_AHEAD if months_ahead is None else months_ahead
    created = []
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT date_trunc('month', time, 'UTC') FROM {DEFAULT} ORDER BY 1")  # noqa: S608
        waiting = [row[0] for row in cursor.fetchall()]
    for start in waiting:
        if event_partition_create(start):
            created.append(partition_name(month_start(start.astimezone(UTC))))
    start = month_start(now or timezone.now())
    for _ in range(months_ahead + 1):
        if event_partition_create(start):
            created.append(partition_name(start))
        start = month_next(start)
    return created


def event_partitions_detach(*, before: datetime | date, drop: bool = False) -> list[str]:
    """Detach every monthly partition that ends on or before ``before`` (drop it too with ``drop``)."""
    limit = month_start(before)
    old = [p for p in event_partitions() if p.end is not None and p.end <= limit]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for partition in old:
            cursor.execute(f"ALTER TABLE {PARENT} DETACH PARTITION {partition.name}")
            if drop:
                cursor.execute(f"DROP TABLE {partition.name}")
    return [p.name for p in old]
