"""API plumbing shared by every surface: a base view with a size limit and surface-specific errors.

A surface subclasses ``ApiView`` and sets ``error_renderer``, a function that turns
(status, code, message, field, request, extra) into its vendor's documented error body.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.errors import DomainError
from crm.idempotency import Replay, idempotency_begin, idempotency_finish, request_hash

logger = logging.getLogger(__name__)

ErrorRenderer = Callable[..., Response]


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"


def describe(exc: Exception) -> tuple[int, str, str, str | None, dict]:
    """(status, code, message, field, extra) for any exception a view can raise."""
    if isinstance(exc, DomainError):
        return exc.status, exc.code, exc.message, exc.field, exc.details
    if isinstance(exc, Http404):
        return 404, "not_found", str(exc) or "Not found.", None, {}
    if isinstance(exc, exceptions.ValidationError):
        field, message = _first_error(exc.detail)
        return 400, "validation_failed", message, field, {}
    if isinstance(exc, exceptions.ParseError):
        return 400, "malformed_body", f"The request body is not valid JSON: {exc.detail}", "body", {}
    if isinstance(exc, exceptions.NotAuthenticated):
        return 401, "not_authenticated", "Authentication required: send an API key or a token.", None, {}
    if isinstance(exc, exceptions.APIException):
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else exc.default_code
        return exc.status_code, str(code), str(exc.detail), None, {}
    return 500, "internal_error", "Internal error; it has been logged.", None, {}


def _first_error(detail, prefix: str = "") -> tuple[str | None, str]:
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = key if key != "non_field_errors" else None
            field, message = _first_error(value, f"{prefix}{name}" if name else prefix)
            return field or (f"{prefix}{name}" if name else None), message
    if isinstance(detail, list) and detail:
        return _first_error(detail[0], prefix)
    return (prefix or None), str(detail)


class ApiView(APIView):
    """Base of every API view: body size limit, and errors in the surface's documented shape."""

    error_renderer: ErrorRenderer

    def max_body_bytes(self) -> int:
        return settings.API_MAX_BODY_BYTES

    def initial(self, request, *args, **kwargs):
        length = request.META.get("CONTENT_LENGTH")
        limit = self.max_body_bytes()
        try:
            too_large = int(length or 0) > limit
        except ValueError:
            too_large = False
        if too_large:
            raise RequestTooLarge(f"The request body exceeds {limit} bytes.")
        super().initial(request, *args, **kwargs)
        self._idempotency = None
        if request.method == "POST" and (key := request.headers.get("Idempotency-Key")) is not None:
            fingerprint = request_hash(method=request.method, path=request.get_full_path(), body=request.body)
            scope = getattr(request.auth, "prefix", None) or "anonymous"
            self._idempotency = idempotency_begin(key=key.strip(), scope=scope, fingerprint=fingerprint)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if record := getattr(self, "_idempotency", None):
            if hasattr(response, "render"):
                response.render()
            idempotency_finish(record=record, response=response)
        return response

    def handle_exception(self, exc):
        if isinstance(exc, Replay):
            return exc.response
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            auth_header = self.get_authenticate_header(self.request)
        else:
            auth_header = None
        status_code, code, message, field, extra = describe(exc)
        if status_code >= 500:
            logger.exception("unhandled error in %s", self.__class__.__name__, exc_info=exc)
        response = type(self).error_renderer(
            status=status_code, code=code, message=message, field=field, request=self.request, extra=extra
        )
        if auth_header:
            response["WWW-Authenticate"] = auth_header
        if isinstance(exc, exceptions.Throttled) and exc.wait:
            response["Retry-After"] = str(int(exc.wait))
        response.exception = True
        return response
