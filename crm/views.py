"""Project-level views: health, the home redirect, and 404/500 pages for API paths in each surface's shape.

``crm`` imports no surface: each surface registers its error renderer for its path prefixes
(``error_renderer_register``), and the 404/500 handlers answer with the renderer of the longest
matching prefix.
"""

from collections.abc import Callable

from django.contrib.staticfiles import finders
from django.http import FileResponse, Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.views.defaults import page_not_found
from django.views.defaults import server_error as html_server_error

from crm.health import health_report
from crm.metrics import metrics_exposition, metrics_refusal
from crm.ratelimit import client_address

# (path prefix, render_error(*, status, code, message, field, request) -> a DRF Response), longest first.
_RENDERERS: list[tuple[str, Callable]] = []


def error_renderer_register(prefixes: tuple[str, ...], render_error: Callable) -> None:
    """Answer errors on paths under ``prefixes`` (outside any view, e.g. 404) with this surface's shape."""
    for prefix in prefixes:
        _RENDERERS[:] = [(p, r) for p, r in _RENDERERS if p != prefix]
        _RENDERERS.append((prefix, render_error))
    _RENDERERS.sort(key=lambda entry: -len(entry[0]))


def api_error_page(request, *, status: int, code: str, message: str):
    """The error in the shape of the surface the path belongs to, or None outside the API."""
    for prefix, render_error in _RENDERERS:
        if request.path.startswith(prefix):
            response = render_error(status=status, code=code, message=message, field=None, request=request)
            content_type = getattr(response, "content_type", None) or "application/json"
            return JsonResponse(response.data, status=response.status_code, content_type=content_type)
    return None


def health(request):
    """Liveness and readiness for load balancers and monitoring: the database, the replica's lag, the task
    queues' lag and the workers' heartbeats (``crm.health``); 503 only when the database does not answer."""
    report, status = health_report()
    return JsonResponse(report, status=status)


def metrics(request):
    """Prometheus' scrape: every metric in the text format (``crm.metrics``), to a bearer of ``METRICS_TOKEN`` or a
    loopback client; others get 401 or 403 as problem details. Not part of the OpenAPI schema (not a JSON API:
    a plain Django view, as ``/health``)."""
    refusal = metrics_refusal(request, client_address=client_address(request))
    if refusal is not None:
        status, detail = refusal
        response = JsonResponse(
            {
                "type": "about:blank",
                "title": "Unauthorized" if status == 401 else "Forbidden",
                "status": status,
                "detail": detail,
                "instance": request.path,
                "code": "metrics.refused",
            },
            status=status,
            content_type="application/problem+json",
        )
        if status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    body, content_type = metrics_exposition(request.headers.get("Accept", ""))
    response = HttpResponse(body, content_type=content_type)
    response["Cache-Control"] = "no-store"
    return response


def favicon(request):
    """``/favicon.ico``, which browsers ask for on every page, from the static files (found in the app in any mode)."""
    path = finders.find("crm/favicon.ico")
    if not path:
        raise Http404
    response = FileResponse(open(path, "rb"), content_type="image/x-icon")  # noqa: SIM115 (FileResponse closes it)
    response["Cache-Control"] = "public, max-age=604800"
    return response


def home(request):
    return HttpResponseRedirect("/admin/")


def not_found(request, exception=None):
    page = api_error_page(request, status=404, code="not_found", message=f"No endpoint at {request.path}.")
    return page if page is not None else page_not_found(request, exception)


def server_error(request):
    page = api_error_page(request, status=500, code="internal_error", message="Internal error; it has been logged.")
    return page if page is not None else html_server_error(request)
