from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from crm import docs, views

admin.site.site_header = "Customer profiles"
admin.site.site_title = "Customer profiles"
admin.site.index_title = "Profiles, consents and activity"

urlpatterns = [
    # The Synerise surface first: its profile lookups are the most frequent requests (none of its routes can
    # match another's paths, so the order changes only how many patterns a lookup is tried against).
    path("", include("api.synerise.urls")),
    path("admin/", admin.site.urls),
    path("health", views.health, name="health"),
    # Prometheus' scrape (docs/monitoring.md); a plain view, so not in the OpenAPI schema.
    path("metrics", views.metrics, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file: no inline script under the CSP.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", docs.OfflineRedocView.as_view(url_name="schema"), name="redoc"),
    path("api/redoc/redoc.standalone.js", docs.redoc_bundle, name="redoc-bundle"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("consents/", include("consents.urls")),
    path("", include("api.tracker")),
    path("", views.home, name="home"),
    path("", include("api.segments")),
    path("", include("api.expertsender.urls")),
    path("", include("api.capillary.urls")),
    path("", include("api.imports")),
    path("", include("api.webhooks")),
]

handler404 = "crm.views.not_found"
handler500 = "crm.views.server_error"
