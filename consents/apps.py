from django.apps import AppConfig


class ConsentsConfig(AppConfig):
    name = "consents"
    verbose_name = "Consents"

    def ready(self):
        from consents.merge import STEP_NAME, consents_merge, consents_unmerge
        from profiles.merge_registry import register_merge_step

        register_merge_step(STEP_NAME, merge=consents_merge, unmerge=consents_unmerge, order=40)
