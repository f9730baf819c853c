"""The one place subscriptions meet segments: which of the changed profiles are in a subscription's segment.

Segments are evaluated for the changed profiles when the outbox row is written. Until the segments table
exists, ``segment_exists`` finds none (so no subscription can name one) and ``subscription_segment_filter``
lets a segment-limited subscription receive nothing rather than everything.
"""

from __future__ import annotations

from collections.abc import Collection

from django.apps import apps


def _segment_model():
    try:
        return apps.get_model("segments", "Segment")
    except LookupError:
        return None


def segment_exists(segment_id: int) -> bool:
    model = _segment_model()
    return model is not None and model.objects.filter(pk=segment_id).exists()


def segment_name(segment_id: int | None) -> str:
    model = _segment_model()
    if segment_id is None or model is None:
        return ""
    segment = model.objects.filter(pk=segment_id).first()
    return str(segment) if segment else ""


def _segment_matches(segment_id: int, profile_ids: list[int]) -> set[int]:
    """The profiles among ``profile_ids`` matching the segment's condition now."""
    model = _segment_model()
    if model is None:
        return set()
    from segments.services import segment_matches  # the segments app's one evaluation of a segment's tree

    if not model.objects.filter(pk=segment_id).exists():
        return set()
    return set(segment_matches(segment_id, profile_ids))


def subscription_segment_filter(subscription, profile_ids: Collection[int]) -> set[int]:
    """The profile ids among ``profile_ids`` this subscription gets changes of (all without a segment)."""
    ids = {pid for pid in profile_ids if pid is not None}
    if subscription.segment_id is None or not ids:
        return ids
    return _segment_matches(subscription.segment_id, sorted(ids))
