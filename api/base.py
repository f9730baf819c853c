"""API plumbing shared by every surface: a base view with size and rate limits and surface-specific errors.

A surface subclasses ``ApiView`` and sets ``error_renderer``, a function that turns
(status, code, message, field, request, extra) into its vendor's documented error body.
Every answer is ``Cache-Control: no-store`` (they carry personal data) and carries the rate-limit fields;
a database that cannot be reached is a 503 in the surface's shape.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable

from django.conf import settings
from django.core.handlers.wsgi import LimitedStream
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404, HttpResponse
from django.utils.cache import patch_cache_control
from rest_framework import exceptions, status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from api.parsers import bad_text
from api.serializers import first_error
from crm.errors import DomainError, ValidationFailed
from crm.idempotency import Replay, idempotency_begin, idempotency_finish, request_hash
from crm.lock_waits import BUSY_MESSAGE, Busy, is_lock_timeout, lock_wait_limit, lock_wait_reset
from crm.models import ApiKey
from crm.ratelimit import Rate, ip_rate_limit_hit, rate_limit_hit

logger = logging.getLogger(__name__)

ErrorRenderer = Callable[..., Response]


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"


class LengthRequired(exceptions.APIException):
    status_code = status.HTTP_411_LENGTH_REQUIRED
    default_code = "length_required"


class DatabaseUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "database_unavailable"
    default_detail = "The database cannot be reached; retry shortly."


class RateLimited(exceptions.Throttled):
    default_code = "rate_limited"

    def __init__(self, *, wait: int, detail: str):
        # DRF's Throttled would append "Expected available in N seconds." to our message.
        exceptions.APIException.__init__(self, detail)
        self.wait = wait


def describe(exc: Exception) -> tuple[int, str, str, str | None, dict]:
    """(status, code, message, field, extra) for any exception a view can raise."""
    if isinstance(exc, DomainError):
        return exc.status, exc.code, exc.message, exc.field, exc.details
    if isinstance(exc, Http404):
        return 404, "not_found", str(exc) or "Not found.", None, {}
    if isinstance(exc, exceptions.ValidationError):
        field, message, code = first_error(exc.detail, exc.get_codes())
        return 400, code, message, field, {}
    if isinstance(exc, exceptions.ParseError):
        return 400, "malformed_body", f"The request body is not valid JSON: {exc.detail}", "body", {}
    if isinstance(exc, OperationalError) and is_lock_timeout(exc):
        return 503, Busy.code, BUSY_MESSAGE, None, {}
    if isinstance(exc, OperationalError | InterfaceError):
        return 503, "database_unavailable", DatabaseUnavailable.default_detail, None, {}
    if isinstance(exc, RateLimited):
        return 429, "rate_limited", str(exc.detail), None, {}
    if isinstance(exc, exceptions.NotAuthenticated):
        return 401, "not_authenticated", "Authentication required: send an API key or a token.", None, {}
    if isinstance(exc, exceptions.APIException):
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else exc.default_code
        return exc.status_code, str(code), str(exc.detail), None, {}
    return 500, "internal_error", "Internal error; it has been logged.", None, {}


_JSON = JSONRenderer()


def json_response(request, data, *, status: int = 200):
    """A JSON answer with the bytes and Content-Type DRF's ``Response`` would render (the same renderer, the only
    one the API has), without the template-response machinery around it: for the hottest reads. Negotiation has
    run (406 for an Accept JSON cannot meet); an Accept with parameters (``indent=4``) gets DRF's own ``Response``."""
    if getattr(request, "accepted_media_type", None) != _JSON.media_type:
        return Response(data, status=status)
    return HttpResponse(_JSON.render(data), status=status, content_type=_JSON.media_type)


class ApiView(APIView):
    """Base of every API view: body size limit, and errors in the surface's documented shape."""

    error_renderer: ErrorRenderer

    def max_body_bytes(self) -> int:
        return settings.API_MAX_BODY_BYTES

    # Requests counted per API key (the default), or per client IP under this policy's setting (views
    # without a key, such as login, set ``ip_rate_limit = "SETTING_NAME"``; ``ip_rate_policy`` names the counter,
    # so a view with a limit of its own does not share its count with the others).
    ip_rate_limit: str | None = None
    ip_rate_policy: str = "ip"
    # POSTs honour ``Idempotency-Key``; a view called by anonymous browsers (who would share one key scope) sets False.
    idempotency_keys: bool = True

    def dispatch(self, request, *args, **kwargs):
        self._lock_wait_limited = False
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:
            if self._lock_wait_limited:
                lock_wait_reset()

    def initial(self, request, *args, **kwargs):
        self._rate_limit = None
        django_request = request._request  # read once, not through DRF's Request proxy (every API request runs this)
        method = django_request.method
        limit = self.max_body_bytes()
        self._limit_chunked_body(request, limit)
        length = django_request.META.get("CONTENT_LENGTH")
        try:
            too_large = int(length or 0) > limit
        except ValueError:
            too_large = False
        if too_large:
            raise RequestTooLarge(f"The request body exceeds {limit} bytes.")
        for name, value in [*kwargs.items(), *django_request.GET.items()]:
            if isinstance(value, str) and (reason := bad_text(value)):
                raise ValidationFailed(f"{name} {reason}.", field=name, code="field.invalid_text")
        super().initial(request, *args, **kwargs)
        if method not in ("GET", "HEAD", "OPTIONS") and settings.API_LOCK_TIMEOUT_SECONDS:
            # A write waits at most this long for a row a long transaction holds, then answers 503 busy.
            lock_wait_limit(settings.API_LOCK_TIMEOUT_SECONDS)
            self._lock_wait_limited = True
        self._idempotency = None
        key = django_request.headers.get("Idempotency-Key") if method == "POST" and self.idempotency_keys else None
        if key is not None:
            fingerprint = request_hash(method=request.method, path=request.get_full_path(), body=request.body)
            scope = getattr(request.auth, "prefix", None) or "anonymous"
            self._idempotency = idempotency_begin(key=key.strip(), scope=scope, fingerprint=fingerprint)

    @staticmethod
    def _limit_chunked_body(request, limit: int) -> None:
        """A body sent without Content-Length (chunked): read at most limit + 1 bytes, so the size check sees it.

        The WSGI server must have de-chunked it (``wsgi.input_terminated``, as gunicorn does); otherwise it
        cannot be read safely and the answer is 411.
        """
        meta = request.META
        if meta.get("CONTENT_LENGTH") or "chunked" not in meta.get("HTTP_TRANSFER_ENCODING", "").lower():
            return
        if not meta.get("wsgi.input_terminated"):
            raise LengthRequired("Send the body with a Content-Length header.")
        body = meta["wsgi.input"].read(limit + 1)
        django_request = request._request
        django_request._stream = LimitedStream(io.BytesIO(body), len(body))
        meta["CONTENT_LENGTH"] = str(len(body))

    # Accept values that choose the first renderer (JSON) whatever DRF's negotiation would weigh: most requests.
    _PLAIN_ACCEPT = frozenset({None, "*/*", "application/json"})

    def perform_content_negotiation(self, request, force=False):
        """DRF's negotiation, answered at once for the common case: no ``?format=`` and an Accept header that is
        absent, ``*/*`` or ``application/json``, with JSON the view's first renderer (the same answer DRF gives)."""
        if (
            self.content_negotiation_class is DefaultContentNegotiation
            and getattr(self, "format_kwarg", None) is None
            and request._request.META.get("HTTP_ACCEPT") in self._PLAIN_ACCEPT
            and api_settings.URL_FORMAT_OVERRIDE not in request._request.GET
        ):
            renderer = self.get_renderers()[0]
            if renderer.media_type == "application/json":
                return renderer, renderer.media_type
        return super().perform_content_negotiation(request, force)

    def check_throttles(self, request):
        if self.ip_rate_limit:
            decision = ip_rate_limit_hit(request, setting=self.ip_rate_limit, policy=self.ip_rate_policy)
        elif isinstance(key := request.auth, ApiKey) and (text := key.rate_limit or settings.API_RATE_LIMIT):
            decision = rate_limit_hit(bucket=f"key:{key.prefix}", rate=Rate.parse(text), policy="key")
        else:
            decision = None
        self._rate_limit = decision
        if decision is not None and not decision.allowed:
            raise RateLimited(
                wait=decision.reset,
                detail=f"Rate limit of {decision.rate.limit} requests per {decision.rate.window} s exceeded; "
                f"retry in {decision.reset} s.",
            )

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if record := getattr(self, "_idempotency", None):
            if hasattr(response, "render"):
                response.render()
            try:
                idempotency_finish(record=record, response=response)
            except DatabaseError:
                logger.warning("could not keep the answer for Idempotency-Key %s", record.key, exc_info=True)
        if "Cache-Control" in response:
            patch_cache_control(response, no_store=True)
        else:
            response["Cache-Control"] = "no-store"  # what patch_cache_control writes when there is none yet
        if decision := getattr(self, "_rate_limit", None):
            for name, value in decision.headers().items():
                response[name] = value
        return response

    def handle_exception(self, exc):
        if isinstance(exc, Replay):
            return exc.response
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            auth_header = self.get_authenticate_header(self.request)
        else:
            auth_header = None
        status_code, code, message, field, extra = describe(exc)
        if code == Busy.code:
            logger.warning("gave up a lock wait in %s: %s", self.__class__.__name__, exc)
        elif status_code == 503:
            logger.warning("database unavailable in %s: %s", self.__class__.__name__, exc)
        elif status_code >= 500:
            logger.exception("unhandled error in %s", self.__class__.__name__, exc_info=exc)
        response = type(self).error_renderer(
            status=status_code, code=code, message=message, field=field, request=self.request, extra=extra
        )
        if auth_header:
            response["WWW-Authenticate"] = auth_header
        if isinstance(exc, exceptions.Throttled) and exc.wait:
            response["Retry-After"] = str(int(exc.wait))
        if status_code == 503:
            response["Retry-After"] = "5"
        response.exception = True
        return response
