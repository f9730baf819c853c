"""API authentication: an API key as Bearer, x-api-key or HTTP Basic, or a JWT from the login endpoint."""

import base64
import binascii

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import SAFE_METHODS, BasePermission

from crm.actors import actor_of
from crm.models import ApiKey, Scope
from crm.ratelimit import auth_failure_count
from crm.services import api_key_authenticate, api_key_from_token


class ApiKeyPrincipal:
    """The request.user of an API call: the key, standing in for a person."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False

    def __init__(self, key: ApiKey):
        self.key = key

    def __str__(self) -> str:
        return actor_of(self.key)


def _credential(request) -> tuple[str, str] | None:
    """(kind, value) of the credential the request carries, where kind is 'key' or 'jwt'."""
    if api_key := request.META.get("HTTP_X_API_KEY"):
        return "key", api_key.strip()
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return ("key" if ApiKey.prefix_of(value) else "jwt"), value
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return "key", ""
        user, _, password = decoded.partition(":")
        # Either the key as the user name with an empty password, or as the password.
        return "key", (password or user)
    return None


class AuthFailuresLimited(exceptions.Throttled):
    """429: the client's address failed authentication too often in the current window."""

    default_code = "rate_limited"

    def __init__(self, *, wait: int, limit: int, window: int):
        # DRF's Throttled would append "Expected available in N seconds." to the message.
        exceptions.APIException.__init__(
            self,
            f"Too many failed authentications from your address ({limit} per {window} s); retry in {wait} s.",
        )
        self.wait = wait


def _limited(decision) -> AuthFailuresLimited:
    return AuthFailuresLimited(wait=decision.reset, limit=decision.rate.limit, window=decision.rate.window)


class ApiKeyAuthentication(BaseAuthentication):
    """An API key or token; failures are counted per client address (``AUTH_FAILURE_RATE_LIMIT``): past the limit
    each further failure from the address gets 429 with ``Retry-After`` until the window ends. A valid key is never
    held up (the count is read only when a key fails, so a good request pays nothing for the limit): keys are
    random secrets, so telling a right guess from a wrong one gives a guesser nothing at this rate."""

    www_authenticate_realm = "api"

    def authenticate(self, request):
        credential = _credential(request)
        if credential is None:
            return None
        kind, value = credential
        key = api_key_from_token(token=value) if kind == "jwt" else api_key_authenticate(secret=value)
        if key is None:
            counted = auth_failure_count(request)
            if counted is not None and not counted.allowed:
                raise _limited(counted)
            raise exceptions.AuthenticationFailed(
                "The token is invalid or expired." if kind == "jwt" else "The API key is invalid or inactive."
            )
        return ApiKeyPrincipal(key), key

    def authenticate_header(self, request):
        return f'Bearer realm="{self.www_authenticate_realm}"'


class HasScope(BasePermission):
    """Reads need the ``read`` scope, writes ``write``; ``admin`` allows everything.

    A view may name its own scope with ``required_scope``.
    """

    message = "This API key may not do this."

    def has_permission(self, request, view):
        key = request.auth
        if not isinstance(key, ApiKey):
            return False
        scope = getattr(view, "required_scope", None) or (Scope.READ if request.method in SAFE_METHODS else Scope.WRITE)
        if not key.allows(scope):
            self.message = f"This API key lacks the '{scope}' scope."
            return False
        return True
