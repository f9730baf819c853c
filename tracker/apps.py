from django.apps import AppConfig


class TrackerConfig(AppConfig):
    name = "tracker"
    verbose_name = "Website tracking"

    def ready(self):
        # Errors outside the collect view (a 404 under /t/) answer as problem details too.
        from crm.problems import render_problem
        from crm.views import error_renderer_register

        error_renderer_register(("/t/",), render_problem)
