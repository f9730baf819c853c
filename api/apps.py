from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "API"

    def ready(self):
        self._register_error_renderers()

    @staticmethod
    def _register_error_renderers():
        """Errors outside any view (404, 500) answer in the shape of the surface that owns the path's prefix."""
        from api.capillary.errors import render_error as capillary_error
        from api.errors import render_error as synerise_error
        from api.expertsender.errors import render_error as expertsender_error
        from api.problems import render_problem
        from crm.views import error_renderer_register

        error_renderer_register(("/v4/", "/crm/", "/uauth/", "/api/"), synerise_error)
        error_renderer_register(("/customers",), expertsender_error)
        error_renderer_register(("/v2/",), capillary_error)
        error_renderer_register(("/integrations/", "/t/"), render_problem)
