from django.apps import AppConfig


class ProfilesConfig(AppConfig):
    name = "profiles"
    verbose_name = "Customer profiles"

    def ready(self):
        from profiles import (
            privacy,
            receivers,
            tasks,  # noqa: F401 - registers the tasks (the recurring one that creates event partitions ahead)
        )
        from profiles.merge_registry import register_merge_step
        from profiles.services.events import events_merge_step, events_unmerge_step
        from profiles.services.tags import tags_merge_step, tags_unmerge_step
        from profiles.services.transactions import transactions_merge_step, transactions_unmerge_step

        receivers.connect()
        privacy.register()
        register_merge_step("tags", merge=tags_merge_step, unmerge=tags_unmerge_step, order=30)
        register_merge_step("events", merge=events_merge_step, unmerge=events_unmerge_step, order=40)
        register_merge_step("transactions", merge=transactions_merge_step, unmerge=transactions_unmerge_step, order=50)
