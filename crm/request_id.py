"""The request id: one per request, from a sane ``X-Request-ID`` or generated, carried into logs and events.

``RequestIdMiddleware`` sets it in a context variable for the time of the request and returns it in the
``X-Request-ID`` response header; ``current_request_id()`` reads it wherever the request's work runs
(the signal receivers write it onto system events, jobs keep it for the worker). Code that works on
behalf of an earlier request (a worker running a job) sets it with ``request_id_scope``.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

HEADER = "X-Request-ID"
_META_KEY = "HTTP_" + HEADER.upper().replace("-", "_")
MAX_LENGTH = 128
# Letters, digits and the punctuation of common id formats (uuid, ULID, trace ids); nothing a log line or a
# header could be split or forged with.
_SANE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+=/-]{0,127}")

_current: ContextVar[str] = ContextVar("request_id", default="")


def current_request_id() -> str:
    """The id of the request being served (or whose work a job continues); empty outside one."""
    return _current.get()


def new_request_id() -> str:
    return uuid.uuid4().hex


def request_id_from_header(value: str | None) -> str:
    """The client's id when it is sane, else a new one."""
    if value and _SANE.fullmatch(value.strip()):
        return value.strip()
    return new_request_id()


@contextmanager
def request_id_scope(request_id: str | None) -> Iterator[str]:
    """Run a block under ``request_id`` (a new one when empty)."""
    value = request_id or new_request_id()
    token = _current.set(value)
    try:
        yield value
    finally:
        _current.reset(token)


class RequestIdMiddleware:
    """Honours a sane ``X-Request-ID`` or generates one, and returns it on the response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # From META, not request.headers: building that mapping parses every header, and on the API's hot reads
        # nothing else asks for it.
        request_id = request_id_from_header(request.META.get(_META_KEY))
        token = _current.set(request_id)
        try:
            request.request_id = request_id
            response = self.get_response(request)
        finally:
            _current.reset(token)
        response[HEADER] = request_id
        return response


class RequestIdLogFilter(logging.Filter):
    """Adds ``request_id`` to every log record ("-" outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _current.get() or "-"
        return True
