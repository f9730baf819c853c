from django.apps import AppConfig


class SegmentsConfig(AppConfig):
    name = "segments"
    verbose_name = "Segments and expressions"

    def ready(self):
        from profiles.merge_registry import register_merge_step
        from profiles.services.tags import register_tag_user
        from segments import membership, receivers, usage  # noqa: F401 - membership registers the recurring refresh
        from segments.membership import membership_merge_step, membership_unmerge_step

        receivers.connect()
        usage.register_segment_user("segments", usage.segments_using)
        register_tag_user("segments", usage.segments_naming_tag)
        register_merge_step("segments", merge=membership_merge_step, unmerge=membership_unmerge_step, order=90)
        self._register_privacy_steps()

    @staticmethod
    def _register_privacy_steps():
        """Erasure and portability: a profile's membership rows go with it and are part of its data export."""
        from privacy.registry import (
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

        register_erasure_step("segment memberships", erase=memberships_erase, models=["segments.SegmentMembership"])
        register_export_step("segments", export=memberships_export, models=["segments.SegmentMembership"], order=80)
        why = "segment definitions (a condition tree) hold no profile data"
        register_erasure_exempt("segments.Segment", why)
        register_export_exempt("segments.Segment", why)
