"""Where a webhook may go: refusing loopback, private, link-local and metadata addresses (SSRF).

A URL is checked when its subscription is saved and again at each delivery, which resolves the name once
and connects to the address it checked (``crm.outbound``: a name cannot resolve to a public address for the
check and to 127.0.0.1 for the request). ``WEBHOOKS_ALLOW_PRIVATE_TARGETS`` lifts the address rule (tests,
on-premise receivers).
"""

from __future__ import annotations

from django.conf import settings

from crm import outbound
from crm.errors import ValidationFailed
from crm.outbound import Target


class TargetRefused(ValidationFailed):
    code = "webhook_target_refused"


def private_allowed() -> bool:
    return bool(settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS)


def address_allowed(address: str) -> bool:
    """Whether a webhook may (still) go to this address: a public one, or any while private targets are allowed."""
    return private_allowed() or outbound.address_allowed(address)


def url_split(url: str, *, field: str = "url") -> tuple[str, str, int, str]:
    """(scheme, host, port, path) of an http(s) URL with a host; ``TargetRefused`` otherwise."""
    return outbound.url_split(url, field=field, refused=TargetRefused)


def target_resolve(url: str, *, field: str = "url") -> Target:
    """The URL's target with the one address to connect to; refused (``TargetRefused``) when the name does
    not resolve or resolves to any non-public address (unless private targets are allowed)."""
    return outbound.target_resolve(
        url,
        allow_private=private_allowed(),
        field=field,
        refused=TargetRefused,
        setting="WEBHOOKS_ALLOW_PRIVATE_TARGETS",
    )
