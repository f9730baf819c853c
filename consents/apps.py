from django.apps import AppConfig


class ConsentsConfig(AppConfig):
    name = "consents"
    verbose_name = "Consents"

    def ready(self):
        from consents import privacy, tasks  # noqa: F401 - importing the tasks registers them with a Celery app
        from consents.merge import STEP_NAME, consents_merge, consents_unmerge
        from consents.selectors import agreement_ids, agreement_state_q
        from profiles.conditions import register_agreements
        from profiles.merge_registry import register_merge_step

        register_merge_step(STEP_NAME, merge=consents_merge, unmerge=consents_unmerge, order=40)
        register_agreements(ids=agreement_ids, q=agreement_state_q)
        privacy.register()
