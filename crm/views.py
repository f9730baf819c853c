"""Project-level views: health, the home redirect, and JSON 404/500 pages for API paths."""

from django.db import connection
from django.http import HttpResponseRedirect, JsonResponse
from django.views.defaults import page_not_found
from django.views.defaults import server_error as html_server_error

from profiles.api.synerise.errors import synerise_error_body

API_PREFIXES = ("/v4/", "/crm/", "/uauth/", "/customers", "/v2/", "/api/")


def _is_api(request) -> bool:
    return request.path.startswith(API_PREFIXES)


def health(request):
    """Liveness and readiness for load balancers: the database answers."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        database = "ok"
    except Exception:
        database = "unavailable"
    ok = database == "ok"
    return JsonResponse({"status": "ok" if ok else "unavailable", "database": database}, status=200 if ok else 503)


def home(request):
    return HttpResponseRedirect("/admin/")


def not_found(request, exception=None):
    if request.path.startswith("/customers"):  # ExpertSender's surface: RFC 7807
        from profiles.api.expertsender.errors import PROBLEM_JSON, problem_body

        body = problem_body(
            status=404, detail=f"No endpoint at {request.path}.", instance=request.path, code="not_found"
        )
        return JsonResponse(body, status=404, content_type=PROBLEM_JSON)
    if request.path.startswith("/v2/"):  # Capillary's surface
        from profiles.api.capillary.errors import entry

        return JsonResponse(
            {"errors": [entry("not_found", f"No endpoint at {request.path}.")], "warnings": []}, status=404
        )
    if _is_api(request):
        body = synerise_error_body(
            status=404, code="not_found", message=f"No endpoint at {request.path}.", field=None, path=request.path
        )
        return JsonResponse(body, status=404)
    return page_not_found(request, exception)


def server_error(request):
    if _is_api(request):
        body = synerise_error_body(
            status=500,
            code="internal_error",
            message="Internal error; it has been logged.",
            field=None,
            path=request.path,
        )
        return JsonResponse(body, status=500)
    return html_server_error(request)
