"""The id of the request being served, for logs and for the records a request causes."""

from __future__ import annotations

from contextvars import ContextVar

_request_id: ContextVar[str | None] = ContextVar("crm_request_id", default=None)


def current_request_id() -> str | None:
    return _request_id.get()


def request_id_set(value: str | None):
    """Set the current request id; returns the token to reset it with."""
    return _request_id.set(value)


def request_id_reset(token) -> None:
    _request_id.reset(token)
