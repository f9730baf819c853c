"""Django's browser middleware, made cheaper where it has nothing to do: on the API's own paths.

The API (``API_PATH_PREFIXES``) is served by DRF views only: CSRF-exempt, authenticated by an API key or a
token, never by a session, and answering JSON. ``request.user`` (DRF sets it from the key) and flash messages
are for the admin and the HTML pages, so the authentication and messages subclasses below pass API requests
straight through and behave exactly as Django's everywhere else (subclasses, so the admin's system checks still
find them). ``tests/crm/test_middleware.py`` checks that every route under these prefixes is such a view.

The session and CSRF middleware stay Django's own on every path: ``check --deploy`` looks for them by name (and
they cost little when no cookie comes). Every answer, API or not, still goes through the security, request-id,
CSP and X-Frame-Options middleware.
"""

from __future__ import annotations

from django.contrib.auth.middleware import AuthenticationMiddleware as DjangoAuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware as DjangoMessageMiddleware
from django.middleware.csp import ContentSecurityPolicyMiddleware as DjangoContentSecurityPolicyMiddleware
from django.middleware.csp import get_nonce
from django.utils.csp import CSP, build_policy

# The paths of the API surfaces (Synerise, ExpertSender, Capillary, incoming integrations, the tracker's collect).
# Not /api/: the API docs are HTML pages.
API_PATH_PREFIXES = (
    "/v4/",
    "/crm/v1/",
    "/uauth/",
    "/customers",
    "/v2/integrations/",
    "/integrations/incoming/",
    "/t/collect",
)


def is_api_path(path_info: str) -> bool:
    return path_info.startswith(API_PATH_PREFIXES)


class _NotOnApiPaths:
    """Mixin for a ``MiddlewareMixin`` middleware: API requests skip it (its process_request/process_response)."""

    def __call__(self, request):
        if request.path_info.startswith(API_PATH_PREFIXES):
            return self.get_response(request)
        return super().__call__(request)


class AuthenticationMiddleware(_NotOnApiPaths, DjangoAuthenticationMiddleware):
    """On API paths ``request.user`` is the key DRF authenticates (``crm.auth``), set by DRF itself."""


class MessageMiddleware(_NotOnApiPaths, DjangoMessageMiddleware):
    pass


class ContentSecurityPolicyMiddleware(DjangoContentSecurityPolicyMiddleware):
    """Django's, with the header of an answer that used no nonce (every API answer, most pages) built once per
    configuration instead of on every response. Same headers; a view's own CSP headers or config still win."""

    def __init__(self, get_response):
        super().__init__(get_response)
        self._built: dict[int, tuple[object, str]] = {}  # id(config) -> (config, header without a nonce)

    def _policy(self, config, nonce) -> str:
        if nonce:
            return build_policy(config, nonce)
        cached = self._built.get(id(config))
        if cached is None or cached[0] is not config:
            cached = (config, build_policy(config))
            if len(self._built) > 32:  # configs of views' own decorators: a handful at most
                self._built.clear()
            self._built[id(config)] = cached
        return cached[1]

    def process_response(self, request, response):
        from django.conf import settings

        nonce = get_nonce(request)
        sentinel = object()
        if (csp_config := getattr(response, "_csp_config", sentinel)) is sentinel:
            csp_config = settings.SECURE_CSP
        if (csp_ro_config := getattr(response, "_csp_ro_config", sentinel)) is sentinel:
            csp_ro_config = settings.SECURE_CSP_REPORT_ONLY
        for header, config in ((CSP.HEADER_ENFORCE, csp_config), (CSP.HEADER_REPORT_ONLY, csp_ro_config)):
            if config and header not in response:
                response.headers[str(header)] = self._policy(config, nonce)
        return response
