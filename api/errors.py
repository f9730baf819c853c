from django.utils import timezone
from rest_framework.response import Response

REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    410: "Gone",
    411: "Length Required",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def synerise_error_body(*, status: int, code: str, message: str, field: str | None, path: str, extra=None) -> dict:
    body = {
        "status": status,
        "error": REASONS.get(status, "Error"),
        "message": message,
        "path": path,
        "timestamp": timezone.now().isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "code": code,
    }
    if field:
        body["field"] = field
    if extra:
        body.update(extra)
    return body


def render_error(*, status, code, message, field, request, extra=None) -> Response:
    """Synerise's error shape: status, error, message, path, timestamp; plus code and the offending field."""
    return Response(
        synerise_error_body(status=status, code=code, message=message, field=field, path=request.path, extra=extra),
        status=status,
    )
