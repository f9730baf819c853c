"""The one catalogue of domain errors that services raise and every API surface renders.

Each error has a stable ``code`` (what integrations switch on), a human message, and the field
or identifier it is about. Surfaces map ``status`` onto their vendor's documented error shape.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a service raises on purpose."""

    status = 400
    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None, **details):
        super().__init__(message)
        self.message = message
        self.field = field
        if code:
            self.code = code
        self.details = details

    def as_dict(self) -> dict:
        data = {"code": self.code, "message": self.message}
        if self.field:
            data["field"] = self.field
        data.update(self.details)
        return data


class ValidationFailed(DomainError):
    """Input that breaks a rule: a value of the wrong type, a junk identifier, a reserved name."""

    status = 400
    code = "validation_failed"


class NotFound(DomainError):
    """The profile, key or object named by the request does not exist."""

    status = 404
    code = "not_found"


class Gone(NotFound):
    """The profile an id names was erased: its clientId, merged-in ids and uuids never resolve again.

    A kind of NotFound, so a surface without a "gone" in its vocabulary answers its own not-found."""

    status = 410
    code = "profile.erased"


class Conflict(DomainError):
    """The write collides with existing data (an identifier owned by another profile, …)."""

    status = 409
    code = "conflict"


class Unauthorized(DomainError):
    """The credential is missing, unknown, inactive or expired."""

    status = 401
    code = "unauthorized"


class Forbidden(DomainError):
    """The caller is known but may not do this."""

    status = 403
    code = "forbidden"
