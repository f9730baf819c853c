"""The one place subscriptions meet segments: which of the changed profiles are in a subscription's segment.

A segment-limited subscription gets the changes of the profiles that match the segment's condition when the
outbox row is written (``segments.services.segment_matches``: the tree evaluated for those profiles, not the
membership rows, which are refreshed a moment later). Subscriptions are registered as users of their segment,
so a segment cannot be deleted while one names it.
"""

from __future__ import annotations

from collections.abc import Collection

from segments.models import Segment
from segments.services import segment_matches


def segment_exists(segment_id: int) -> bool:
    return Segment.objects.filter(pk=segment_id).exists()


def segment_name(segment_id: int | None) -> str:
    segment = Segment.objects.filter(pk=segment_id).first() if segment_id is not None else None
    return str(segment) if segment else ""


def _segment_matches(segment_id: int, profile_ids: list[int]) -> set[int]:
    """The profiles among ``profile_ids`` matching the segment's condition now (none once it is gone)."""
    if not Segment.objects.filter(pk=segment_id).exists():
        return set()
    return set(segment_matches(segment=segment_id, profile_ids=profile_ids))


def subscription_segment_filter(subscription, profile_ids: Collection[int]) -> set[int]:
    """The profile ids among ``profile_ids`` this subscription gets changes of (all without a segment)."""
    ids = {pid for pid in profile_ids if pid is not None}
    if subscription.segment_id is None or not ids:
        return ids
    return _segment_matches(subscription.segment_id, sorted(ids))


def subscriptions_using(segment_id: int) -> list[str]:
    """Webhook subscriptions limited to the segment (for the segments' usage registry)."""
    from webhooks.models import Subscription

    return [
        f"webhook {pk} {url}" for pk, url in Subscription.objects.filter(segment_id=segment_id).values_list("pk", "url")
    ]
