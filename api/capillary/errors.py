"""Capillary's error shape (Capillary's documentation): ``errors[{status, code, message}]`` and ``warnings[]``.

Capillary's codes are numbers; ours are stable strings. ``CODES`` maps one onto the other (each
entry also carries our string code as ``reason``), so an integration can switch on either.
"""

from __future__ import annotations

from rest_framework.response import Response

# Our domain error code (or its prefix) → Capillary-style numeric code.
CODES = {
    "identity.conflict": 8010,  # identifiers name two recognized profiles: never merged silently
    "identity.busy": 8011,
    "profile.not_found": 8015,
    "profile.erased": 8015,  # an erased profile is Capillary's not-found
    "identifier.missing": 8003,
    "identifier.type_unknown": 8004,
    "identifier.kept": 8020,  # warning: skipChangeIdentifier=true left an identifier as it was
    "field.ignored": 8021,  # warning: a field this API does not store
    "subscription.ignored": 8022,  # warning: a transactional subscription (not a marketing consent)
    "status_label.invalid": 3017,  # Capillary's own example
    "email": 8005,
    "phone": 8006,
    "identifier": 8007,
    "attribute": 8008,
    "agreement": 8009,
    "consent": 8009,
    "batch": 8030,
    "not_authenticated": 401,
    "authentication_failed": 401,
    "unauthorized": 401,
    "permission_denied": 403,
    "forbidden": 403,
    "not_found": 404,
    "request_too_large": 413,
    "length_required": 411,
    "rate_limited": 429,
    "database_unavailable": 503,
    "internal_error": 500,
}
DEFAULT_CODE = 8001  # any other invalid input


def numeric_code(code: str) -> int:
    if code in CODES:
        return CODES[code]
    return CODES.get(code.split(".", 1)[0], DEFAULT_CODE)


def entry(code: str, message: str, *, ok: bool = False) -> dict:
    """One ``errors``/``warnings`` entry: ``status`` is false for an error, true for a warning."""
    return {"status": ok, "code": numeric_code(code), "message": message, "reason": code}


def render_error(*, status, code, message, field, request, extra=None) -> Response:
    if status == 410:  # an erased profile: Capillary's vocabulary has only its not-found
        status = 404
    text = f"{field}: {message}" if field and field not in message else message
    return Response({"errors": [entry(code, text)], "warnings": []}, status=status)
