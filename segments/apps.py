from django.apps import AppConfig


class SegmentsConfig(AppConfig):
    name = "segments"
    verbose_name = "Segments and expressions"

    def ready(self):
        from profiles.merge_registry import register_merge_step
        from segments import receivers, tasks, usage  # noqa: F401 - tasks registers the recurring refresh
        from segments.membership import membership_merge_step, membership_unmerge_step

        receivers.connect()
        usage.register_segment_user("segments", usage.segments_using)
        register_merge_step("segments", merge=membership_merge_step, unmerge=membership_unmerge_step, order=90)
