"""The API docs served wholly from this server (they must work offline).

drf-spectacular's sidecar serves Redoc's and Swagger UI's files locally, but its Redoc page links Google Fonts and
the Redoc bundle shows Redocly's logo from their CDN. Here the page is our own template (system fonts, no inline
script: ``crm/static/crm/redoc-init.js`` starts Redoc from data attributes) and the bundle is the sidecar's with
the logo's address pointing at our favicon.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from django.contrib.staticfiles import finders
from django.http import Http404, HttpResponse
from django.templatetags.static import static
from django.urls import reverse
from drf_spectacular.settings import spectacular_settings
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularRedocView

REDOC_BUNDLE = "drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js"
REDOCLY_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
SYSTEM_FONTS = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
MONOSPACE_FONTS = "ui-monospace, SFMono-Regular, Menlo, Consolas, 'Liberation Mono', monospace"
# Redoc's own defaults name Montserrat and Roboto, which the stock page fetched from Google Fonts.
REDOC_OPTIONS = {
    "theme": {
        "typography": {
            "fontFamily": SYSTEM_FONTS,
            "headings": {"fontFamily": SYSTEM_FONTS},
            "code": {"fontFamily": MONOSPACE_FONTS},
        }
    }
}


@lru_cache(maxsize=1)
def redoc_bundle_text() -> str:
    path = finders.find(REDOC_BUNDLE)
    if not path:
        raise Http404("Redoc is not installed (drf-spectacular-sidecar).")
    return Path(path).read_text(encoding="utf-8").replace(REDOCLY_LOGO, static("crm/favicon.ico"))


def redoc_bundle(request):
    response = HttpResponse(redoc_bundle_text(), content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "public, max-age=86400"
    return response


class OfflineRedocView(SpectacularRedocView):
    template_name = "api/redoc.html"

    @extend_schema(exclude=True)
    def get(self, request, *args, **kwargs):
        response = super().get(request, *args, **kwargs)
        options = {**REDOC_OPTIONS, **(spectacular_settings.REDOC_UI_SETTINGS or {})}
        response.data = {**response.data, "redoc_standalone": reverse("redoc-bundle"), "options": json.dumps(options)}
        return response
