from django.apps import AppConfig


class ImportsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "imports"
    verbose_name = "Imports and integrations"

    def ready(self):
        from imports import privacy, receivers, tasks  # noqa: F401 - connects the file clean-up, registers the tasks

        privacy.register()
