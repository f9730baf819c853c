from django.apps import AppConfig


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = "Platform"

    def ready(self):
        from crm import (
            metrics,  # noqa: F401 - counts finished tasks (task_finished)
            schema,  # noqa: F401 - registers the OpenAPI authentication extension
            system,
            tasks,  # noqa: F401 - registers the recurring tasks
        )

        system.register()
