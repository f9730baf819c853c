from django.apps import AppConfig


class SegmentsConfig(AppConfig):
    name = "segments"
    verbose_name = "Segments and expressions"

    def ready(self):
        from profiles.conditions import register_segment_trees
        from profiles.merge_registry import register_merge_step
        from profiles.services.tags import register_tag_user
        from segments import metrics, privacy, receivers, tasks, usage  # noqa: F401 - tasks: the recurring refresh
        from segments.membership import membership_merge_step, membership_unmerge_step
        from segments.selectors import segment_tree

        receivers.connect()
        register_segment_trees(segment_tree)
        usage.register_segment_user("segments", usage.segments_using)
        register_tag_user("segments", usage.segments_naming_tag)
        register_merge_step("segments", merge=membership_merge_step, unmerge=membership_unmerge_step, order=90)
        privacy.register()
        metrics.register()
