"""Segment writes and reads: create, update, delete (refused while in use), count, preview, membership questions.

Surfaces (the Synerise-style API, the admin builder) call these; the tree language is ``profiles.conditions``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from crm.errors import Conflict, ValidationFailed
from profiles.conditions import (
    condition_parse,
    condition_q,
    condition_store,
    is_time_relative,
    uses_commerce,
)
from profiles.models import Profile
from segments.models import Segment

logger = logging.getLogger(__name__)
PREVIEW_SIZE = 20
NAME_MAX = 128


def _name(name) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValidationFailed("name must be a non-empty string.", field="name")
    if len(name.strip()) > NAME_MAX:
        raise ValidationFailed(f"name has at most {NAME_MAX} characters.", field="name")
    return name.strip()


def _parse_for(segment_id: int | None, tree):
    """Parse a tree for a segment: a reference back to the segment itself (directly or not) is a cycle."""
    if tree is None:
        raise ValidationFailed("filter is required.", field="filter")
    return condition_parse(tree, path="filter", _seen=frozenset({segment_id}) if segment_id else None)


def _apply(segment: Segment, node) -> None:
    segment.tree = condition_store(node)
    segment.time_relative = is_time_relative(node)
    segment.uses_commerce = uses_commerce(node)


def _save(segment: Segment) -> None:
    try:
        with transaction.atomic():
            segment.save()
    except IntegrityError as exc:
        if "segment_name_ci_unique" in str(exc):
            raise Conflict(
                f"A segment named '{segment.name}' already exists.", field="name", code="segment.exists"
            ) from None
        raise


def _fill_later(segment_id: int) -> None:
    """Fill after commit, once every process's cached "no segments" answer has expired (see membership)."""
    transaction.on_commit(lambda: _fill_enqueue(segment_id))


def _fill_enqueue(segment_id: int) -> None:
    from datetime import timedelta

    from segments.membership import fill_delay_seconds
    from segments.tasks import segment_fill_task

    try:
        if segment_fill_task.get_backend().supports_defer:
            run_after = timezone.now() + timedelta(seconds=fill_delay_seconds())
            segment_fill_task.using(run_after=run_after).enqueue(segment_id)
        else:
            segment_fill_task.enqueue(segment_id)
    except Exception:
        # The segment is saved; its membership fills on its next edit or refresh (a failing queue fails no write).
        logger.exception("could not enqueue the fill of segment %s", segment_id)


def segment_create(*, name, tree, description: str = "", actor: str = "") -> Segment:
    """A new segment; it fills in the background within seconds (no timeline events for that)."""
    node = _parse_for(None, tree)
    segment = Segment(name=_name(name), description=description or "", created_by=actor, updated_by=actor)
    _apply(segment, node)
    with transaction.atomic():
        _save(segment)
        _fill_later(segment.pk)
    return segment


def segment_update(*, segment: Segment, name=None, tree=None, description=None, actor: str = "") -> Segment:
    """Change a segment; a new tree refills it (and the segments using it) in the background."""
    changed_tree = tree is not None
    if changed_tree:
        _apply(segment, _parse_for(segment.pk, tree))
    if name is not None:
        segment.name = _name(name)
    if description is not None:
        segment.description = description
    segment.updated_by = actor
    with transaction.atomic():
        _save(segment)
        if changed_tree:
            _fill_later(segment.pk)
    return segment


def segment_delete(*, segment: Segment, actor: str = "") -> None:
    """Delete a segment nothing uses; otherwise 409 naming the users."""
    from segments.usage import segment_usage

    with transaction.atomic():
        Segment.objects.select_for_update().filter(pk=segment.pk).first()
        segment_usage.refuse_if_used(segment.pk, what=f"Segment {segment.pk}", field="segment", code="segment.in_use")
        segment.delete()


@dataclass(frozen=True)
class CountResult:
    count: int
    took_ms: float


def segment_count(*, segment: Segment) -> CountResult:
    """Count by evaluating the tree (exact at once, whatever the membership rows say); recorded on the segment."""
    node = _parse_for(segment.pk, segment.tree)
    result = tree_count(node=node)
    Segment.objects.filter(pk=segment.pk).update(
        last_count=result.count, last_evaluated_at=timezone.now(), evaluation_ms=result.took_ms
    )
    segment.last_count, segment.evaluation_ms = result.count, result.took_ms
    return result


def tree_count(*, node) -> CountResult:

    started = time.perf_counter()
    count = Profile.objects.filter(condition_q(node)).order_by().count()
    return CountResult(count=count, took_ms=round((time.perf_counter() - started) * 1000, 2))


@dataclass(frozen=True)
class Preview:
    count: int
    took_ms: float
    profile_ids: list[int]


def tree_preview(*, tree, path: str = "filter", size: int = PREVIEW_SIZE) -> Preview:
    """A tree without saving it: its count and the first profiles (newest first)."""

    node = condition_parse(tree, path=path)
    counted = tree_count(node=node)
    ids = list(Profile.objects.filter(condition_q(node)).order_by("-id").values_list("pk", flat=True)[:size])
    return Preview(count=counted.count, took_ms=counted.took_ms, profile_ids=ids)


def segment_queryset(*, segment: Segment):
    """The segment's profiles, evaluated from its tree (lists, exports): a Profile queryset."""

    return Profile.objects.filter(segment_q(segment=segment))


def segment_q(*, segment: Segment | int) -> Q:
    """The segment's tree compiled to a ``Q`` over Profile (for any list that filters by a segment)."""
    if not isinstance(segment, Segment):
        found = Segment.objects.filter(pk=segment).first()
        if found is None:
            raise ValidationFailed(f"No segment with id {segment}.", field="segment", code="segment.not_found")
        segment = found
    return condition_q(_parse_for(segment.pk, segment.tree))


def segment_matches(*, segment: Segment | int, profile_ids) -> set[int]:
    """Which of these profiles match the segment's tree right now (not its membership rows).

    For callers that must decide at the moment of a change, such as segment-limited webhook subscriptions:
    one query over the given profiles, event counts correlated per profile.
    """

    ids = sorted({int(pid) for pid in profile_ids})
    if not ids:
        return set()
    if not isinstance(segment, Segment):
        segment = Segment.objects.get(pk=segment)
    q = condition_q(_parse_for(segment.pk, segment.tree), few=True)
    return set(Profile.objects.filter(pk__in=ids).filter(q).values_list("pk", flat=True))


def profile_segments(*, profile_id: int) -> list[Segment]:
    """The segments a profile is in (its membership rows), by name: one query."""
    return list(
        Segment.objects.filter(memberships__profile_id=profile_id)
        .annotate(member_since=F("memberships__since"))
        .order_by("name", "id")
    )
