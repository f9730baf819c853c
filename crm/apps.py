from django.apps import AppConfig


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = "Platform"

    def ready(self):
        from crm import (
            schema,  # noqa: F401 - registers the OpenAPI authentication extension
            tasks,  # noqa: F401 - registers the recurring tasks
        )
