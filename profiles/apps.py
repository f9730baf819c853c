from django.apps import AppConfig


class ProfilesConfig(AppConfig):
    name = "profiles"
    verbose_name = "Customer profiles"

    def ready(self):
        from profiles import (
            partitions,  # noqa: F401 - registers the recurring task that creates event partitions ahead
            receivers,
        )
        from profiles.merge_registry import register_merge_step
        from profiles.services.events import events_merge_step, events_unmerge_step
        from profiles.services.tags import tags_merge_step, tags_unmerge_step
        from profiles.services.transactions import transactions_merge_step, transactions_unmerge_step

        receivers.connect_optional()
        self._register_error_renderers()
        register_merge_step("tags", merge=tags_merge_step, unmerge=tags_unmerge_step, order=30)
        register_merge_step("events", merge=events_merge_step, unmerge=events_unmerge_step, order=40)
        register_merge_step("transactions", merge=transactions_merge_step, unmerge=transactions_unmerge_step, order=50)

    @staticmethod
    def _register_error_renderers():
        """Errors outside any view (404, 500) on a surface's paths answer in that surface's shape."""
        from crm.views import error_renderer_register
        from profiles.api.capillary.errors import render_error as capillary_error
        from profiles.api.expertsender.errors import render_error as expertsender_error
        from profiles.api.synerise.errors import render_error as synerise_error

        error_renderer_register(("/v4/", "/crm/", "/uauth/", "/api/"), synerise_error)
        error_renderer_register(("/customers",), expertsender_error)
        error_renderer_register(("/v2/",), capillary_error)
