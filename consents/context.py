"""Who is on the other end of a consent change: the IP address and user agent of the current request.

Views pass ``RequestMeta.from_request(request)`` to the services explicitly. Writes that reach
``consent_set`` through other services (a profile upsert from an API surface) do not carry the
request; for those, ``RequestMetaMiddleware`` keeps the current request's metadata in a context
variable that ``consent_set`` falls back to (read from the request only when a write asks for it).
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from crm.ratelimit import client_address


@dataclass(frozen=True)
class RequestMeta:
    ip_address: str | None = None
    user_agent: str = ""

    @classmethod
    def from_request(cls, request) -> RequestMeta:
        return cls(ip_address=client_address(request), user_agent=request.META.get("HTTP_USER_AGENT", "")[:512])


_current: ContextVar = ContextVar("consents_request_meta", default=None)  # the request being served


def current_request_meta() -> RequestMeta | None:
    request = _current.get()
    if request is None:
        return None
    meta = getattr(request, "_consents_request_meta", None)
    if meta is None:
        meta = request._consents_request_meta = RequestMeta.from_request(request)
    return meta


class RequestMetaMiddleware:
    """Makes the request's IP address and user agent available to consent writes made while serving it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _current.set(request)
        try:
            return self.get_response(request)
        finally:
            _current.reset(token)
