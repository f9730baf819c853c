"""ExpertSender's error shape: RFC 7807 problem details (``api.problems``) with ExpertSender's ``type`` URIs and
titles, and ``errors`` (a list of strings) on 400 (ExpertSender's documentation)."""

from __future__ import annotations

from rest_framework.response import Response

from api.problems import PROBLEM_JSON
from api.problems import problem_body as rfc7807_body

TYPES = {
    400: ("https://tools.ietf.org/html/rfc9110#section-15.5.1", "Bad Request"),
    401: ("https://tools.ietf.org/html/rfc9110#section-15.5.2", "Unauthorized"),
    404: ("https://tools.ietf.org/html/rfc9110#section-15.5.5", "Not Found"),
    405: ("https://tools.ietf.org/html/rfc9110#section-15.5.6", "Method Not Allowed"),
    411: ("https://tools.ietf.org/html/rfc9110#section-15.5.12", "Length Required"),
    413: ("https://tools.ietf.org/html/rfc9110#section-15.5.14", "Content Too Large"),
    415: ("https://tools.ietf.org/html/rfc9110#section-15.5.16", "Unsupported Media Type"),
    422: ("https://tools.ietf.org/html/rfc9110#section-15.5.21", "Unprocessable Content"),
    429: ("https://tools.ietf.org/html/rfc6585#section-4", "Too Many Requests"),
    500: ("https://tools.ietf.org/html/rfc9110#section-15.6.1", "Internal Server Error"),
    503: ("https://tools.ietf.org/html/rfc9110#section-15.6.4", "Service Unavailable"),
}


def problem_body(*, status: int, detail: str, instance: str, errors: list[str] | None = None, **extra) -> dict:
    type_, title = TYPES.get(status, ("about:blank", "Error"))
    if status == 400:
        extra = {"errors": errors if errors is not None else [detail], **extra}
    return rfc7807_body(status=status, detail=detail, instance=instance, type_=type_, title=title, **extra)


def render_error(*, status, code, message, field, request, extra=None) -> Response:
    # ExpertSender's documentation answers a key without the needed permission with 401 too ("… information that you do
    # not have permission to access"); there is no 403 in its vocabulary.
    if status == 403:
        status = 401
    # An erased profile (410 on the Synerise surface): ExpertSender's vocabulary has only its not-found.
    if status == 410:
        status, code = 404, "profile.not_found"
    errors = [f"{field}: {message}"] if field else [message]
    body = problem_body(status=status, detail=message, instance=request.path, errors=errors, code=code)
    return Response(body, status=status, content_type=PROBLEM_JSON)
