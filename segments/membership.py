"""Live membership: ``SegmentMembership`` rows kept in step with the segments' trees.

- A write records the profiles it touched (``touched_record``: one INSERT into ``TouchedProfile`` inside the
  write's transaction, whatever the batch size) and, after commit, plans one refresh task a second at most per
  process (``SEGMENT_REFRESH_DELAY_SECONDS``). The task takes the touched ids in batches and re-evaluates only
  those profiles against every segment (``membership_refresh``), so writes stay fast and membership follows
  within seconds. Entering and leaving are signalled (``segments.signals``) and land on the timeline.
- Time-relative segments (``inLastDays``, ``withinDays``) are re-evaluated whole on a schedule, and segments with
  commerce conditions after every RFM recomputation (``segment_fill`` with a cause: with events).
- Creating or editing a segment fills it whole without events (``segment_fill`` without a cause).

Every refresh takes one advisory transaction lock, so two refreshes never interleave their diffs.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from profiles.conditions import Catalog, ConditionError, condition_parse, condition_q
from profiles.models import Profile
from segments import signals
from segments.models import Segment, SegmentMembership, TouchedProfile

logger = logging.getLogger(__name__)

_LOCK_KEY = 0x7365676D656E74  # "segment"
_live_cache: tuple[float, bool] | None = None  # (when read, the answer); None: ask
_planned_until = 0.0


def fill_delay_seconds() -> float:
    """A process trusts its answer to "does any segment exist?" (every write asks) for SEGMENT_LIVE_CACHE_SECONDS.
    A new segment is filled only after that has passed, so a write another process made meanwhile without
    recording its profiles is already in the data the fill reads."""
    return settings.SEGMENT_LIVE_CACHE_SECONDS + 0.5


def live_segments_exist() -> bool:
    """Whether any segment exists, read at most every SEGMENT_LIVE_CACHE_SECONDS per process (saving or deleting
    a segment clears the process's answer at once)."""
    global _live_cache
    now = time.monotonic()
    if _live_cache is None or now - _live_cache[0] > settings.SEGMENT_LIVE_CACHE_SECONDS:
        _live_cache = (now, Segment.objects.exists())
    return _live_cache[1]


def live_cache_clear() -> None:
    global _live_cache
    _live_cache = None


def touched_record(profile_ids) -> None:
    """Remember profiles a write changed, for the next refresh; call inside the write's transaction."""
    ids = sorted({int(pid) for pid in profile_ids if pid is not None})
    if not ids or not live_segments_exist():
        return
    with connection.cursor() as cursor:
        # Sorted ids: two writes touching the same profiles take the rows' locks in one order.
        cursor.execute(
            "INSERT INTO segments_touchedprofile (profile_id, touched_at) SELECT unnest(%s::bigint[]), now() "
            "ON CONFLICT (profile_id) DO NOTHING",
            [ids],
        )
    transaction.on_commit(refresh_schedule)


def refresh_schedule() -> None:
    """Plan the refresh task after a write committed (once per delay per process; a failing queue fails nothing)."""
    global _planned_until

    now = time.monotonic()
    if now < _planned_until - 0.2:
        return  # a planned run starts after this commit and will see its rows
    from segments.tasks import segments_refresh_touched_task

    delay = settings.SEGMENT_REFRESH_DELAY_SECONDS
    try:
        backend = segments_refresh_touched_task.get_backend()
        if backend.supports_defer and delay > 0:
            segments_refresh_touched_task.using(run_after=timezone.now() + timedelta(seconds=delay)).enqueue()
            _planned_until = now + delay
        else:
            segments_refresh_touched_task.enqueue()
    except Exception:
        logger.exception("could not enqueue the segment refresh")


def _lock(cursor) -> None:
    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])


def segments_compiled(segments=None) -> list[tuple[Segment, object]]:
    """(segment, parsed tree) of the given segments (default: all); one that no longer parses is skipped."""
    catalog = Catalog()
    compiled = []
    for segment in Segment.objects.all() if segments is None else segments:
        try:
            compiled.append((segment, condition_parse(segment.tree, _catalog=catalog)))
        except ConditionError as exc:
            logger.warning("segment %s no longer compiles: %s (%s)", segment.pk, exc.message, exc.field)
    return compiled


def _signal(entered: list[tuple[int, int]], left: list[tuple[int, int]], names: dict[int, str], cause: str):
    if entered:
        signals.segment_entered.send(sender=Segment, pairs=entered, segments=names, cause=cause)
    if left:
        signals.segment_left.send(sender=Segment, pairs=left, segments=names, cause=cause)


def profiles_matching(compiled, ids, *, now=None) -> set[tuple[int, int]]:
    """(profile_id, segment_id) for every given profile and segment it matches: one query, one boolean column per
    segment over just these profiles (event counts correlated per profile)."""
    from django.db.models import BooleanField, ExpressionWrapper

    now = now or timezone.now()
    wanted: set[tuple[int, int]] = set()
    # A few dozen boolean columns per query keeps each statement's plan small.
    for start in range(0, len(compiled), 25):
        part = compiled[start : start + 25]
        columns = {
            f"s{segment.pk}": ExpressionWrapper(condition_q(node, now=now, few=True), output_field=BooleanField())
            for segment, node in part
        }
        rows = Profile.objects.filter(pk__in=ids).order_by().annotate(**columns).values_list("pk", *columns)
        for pid, *flags in rows:
            wanted.update((pid, segment.pk) for (segment, _), flag in zip(part, flags, strict=True) if flag)
    return wanted


def membership_refresh(*, profile_ids, cause: str = "write", compiled=None) -> tuple[int, int]:
    """Re-evaluate these profiles against every segment; write the differences and signal them.

    One query per segment over the given profiles (event counts correlated per profile), one read of their
    current rows, one INSERT and one DELETE. Returns (entered, left).
    """
    ids = sorted(set(profile_ids))
    if not ids:
        return 0, 0

    with transaction.atomic():
        with connection.cursor() as cursor:
            _lock(cursor)
        compiled = segments_compiled() if compiled is None else compiled
        wanted = profiles_matching(compiled, ids)
        segment_ids = [segment.pk for segment, _ in compiled]
        current = set(
            SegmentMembership.objects.filter(profile_id__in=ids, segment_id__in=segment_ids).values_list(
                "profile_id", "segment_id"
            )
        )
        entered = sorted(wanted - current)
        left = sorted(current - wanted)
        with connection.cursor() as cursor:
            if entered:
                cursor.execute(
                    "INSERT INTO segments_segmentmembership (profile_id, segment_id, since) "
                    "SELECT u.p, u.s, now() FROM unnest(%s::bigint[], %s::bigint[]) AS u(p, s) "
                    "JOIN profiles_profile AS p ON p.id = u.p ON CONFLICT DO NOTHING",
                    [[p for p, _ in entered], [s for _, s in entered]],
                )
            if left:
                cursor.execute(
                    "DELETE FROM segments_segmentmembership AS m USING unnest(%s::bigint[], %s::bigint[]) AS u(p, s) "
                    "WHERE m.profile_id = u.p AND m.segment_id = u.s",
                    [[p for p, _ in left], [s for _, s in left]],
                )
        _signal(entered, left, {segment.pk: segment.name for segment, _ in compiled}, cause)
    return len(entered), len(left)


def segment_fill(*, segment: Segment, cause: str | None = None) -> tuple[int, int]:
    """Re-evaluate one segment over the whole base in one statement; with a cause, signal who entered and left.

    Without a cause (a segment just created or edited) nothing is signalled. Records the count and the time taken.
    """

    compiled = segments_compiled([segment])
    if not compiled:
        return 0, 0
    _, node = compiled[0]
    started = time.perf_counter()
    matching = Profile.objects.filter(condition_q(node)).order_by().values("pk")
    sql, params = matching.query.sql_with_params()
    with transaction.atomic(), connection.cursor() as cursor:
        _lock(cursor)
        cursor.execute(
            f"""
            WITH m(id) AS MATERIALIZED ({sql}),
            ins AS (
                INSERT INTO segments_segmentmembership (profile_id, segment_id, since)
                SELECT m.id, %s, now() FROM m ON CONFLICT DO NOTHING RETURNING profile_id
            ),
            del AS (
                DELETE FROM segments_segmentmembership AS s
                WHERE s.segment_id = %s AND NOT EXISTS (SELECT 1 FROM m WHERE m.id = s.profile_id)
                RETURNING profile_id
            )
            SELECT true, profile_id FROM ins UNION ALL SELECT false, profile_id FROM del
            UNION ALL SELECT NULL, count(*) FROM m
            """,  # noqa: S608 - the SQL of a compiled queryset; values are parameters
            [*params, segment.pk, segment.pk],
        )
        rows = cursor.fetchall()
        entered = sorted((pid, segment.pk) for flag, pid in rows if flag is True)
        left = sorted((pid, segment.pk) for flag, pid in rows if flag is False)
        count = next(pid for flag, pid in rows if flag is None)
        took = (time.perf_counter() - started) * 1000
        Segment.objects.filter(pk=segment.pk).update(
            last_count=count, last_evaluated_at=timezone.now(), evaluation_ms=took, members_refreshed_at=timezone.now()
        )
        if cause:
            _signal(entered, left, {segment.pk: segment.name}, cause)
    return len(entered), len(left)


def segments_refresh_touched(*, batch: int | None = None) -> int:
    """Take the touched profiles in batches and refresh them; returns how many were refreshed."""
    batch = batch or settings.SEGMENT_REFRESH_BATCH
    done = 0
    while True:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(
                    """
                    DELETE FROM segments_touchedprofile WHERE profile_id IN (
                        SELECT profile_id FROM segments_touchedprofile ORDER BY profile_id
                        LIMIT %s FOR UPDATE SKIP LOCKED
                    ) RETURNING profile_id
                    """,
                    [batch],
                )
                ids = [row[0] for row in cursor.fetchall()]
            if not ids:
                return done
            membership_refresh(profile_ids=ids, cause="write")
            done += len(ids)


def segments_refresh_time_relative() -> int:
    """Re-evaluate every time-relative segment whole, signalling who entered and left; returns how many."""
    segments = list(Segment.objects.filter(time_relative=True))
    for segment in segments:
        segment_fill(segment=segment, cause="time")
    return len(segments)


def segments_refresh_commerce() -> int:
    """After RFM scoring: re-evaluate every segment with commerce conditions, signalling changes."""
    segments = list(Segment.objects.filter(uses_commerce=True))
    for segment in segments:
        segment_fill(segment=segment, cause="commerce")
    return len(segments)


# --- merge steps (profiles.merge_registry) -----------------------------------------------------------------


def membership_merge_step(*, ctx) -> dict:
    """The merged-in profile's rows go (it is gone); the survivor is re-evaluated after the merge's commit."""
    deleted = list(SegmentMembership.objects.filter(profile_id=ctx.merged.pk).values_list("segment_id", flat=True))
    SegmentMembership.objects.filter(profile_id=ctx.merged.pk).delete()
    touched_record([ctx.survivor.pk])
    return {"segments": sorted(deleted)}


def membership_unmerge_step(*, ctx) -> list[str]:
    """Both profiles are re-evaluated (their data changed): membership follows the restored data, not the past."""
    touched_record([ctx.survivor.pk, ctx.restored.pk])
    return []


__all__ = [
    "TouchedProfile",
    "live_segments_exist",
    "membership_refresh",
    "segment_fill",
    "segments_refresh_commerce",
    "segments_refresh_time_relative",
    "segments_refresh_touched",
    "touched_record",
]
