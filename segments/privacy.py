"""The segments' part in erasure and portability (``profiles.privacy_registry``): a profile's membership rows go
with it and are part of its data export; segment definitions (a condition tree) hold no profile data."""

from __future__ import annotations

from profiles.privacy_registry import (
    register_erasure_exempt,
    register_erasure_step,
    register_export_exempt,
    register_export_step,
)
from segments.models import SegmentMembership


def memberships_erase(ctx) -> int:
    return SegmentMembership.objects.filter(profile_id__in=ctx.client_ids).delete()[0]


def memberships_export(ctx) -> list[dict]:
    rows = SegmentMembership.objects.filter(profile_id__in=ctx.client_ids).select_related("segment")
    return [{"segment": m.segment.name, "since": m.since.isoformat()} for m in rows.order_by("segment__name")]


def register() -> None:
    register_erasure_step("segment memberships", erase=memberships_erase, models=["segments.SegmentMembership"])
    register_export_step("segments", export=memberships_export, models=["segments.SegmentMembership"], order=80)
    why = "segment definitions (a condition tree) hold no profile data"
    register_erasure_exempt("segments.Segment", why)
    register_export_exempt("segments.Segment", why)
