"""Where a webhook may go: refusing loopback, private, link-local and metadata addresses (SSRF).

A URL is checked when its subscription is saved and again at each delivery, which resolves the name once
and connects to the address it checked (a name cannot resolve to a public address for the check and to
127.0.0.1 for the request). ``WEBHOOKS_ALLOW_PRIVATE_TARGETS`` lifts the address rule (tests, on-premise
receivers).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from crm.errors import ValidationFailed

SCHEMES = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Target:
    """A URL split for a pinned connection: ``address`` is the checked IP to connect to."""

    scheme: str
    host: str
    port: int
    path: str  # path and query
    address: str


def host_header(scheme: str, host: str, port: int) -> str:
    """The ``Host`` header of a request to this URL's host (the port only when not the scheme's own)."""
    host = f"[{host}]" if ":" in host else host
    return host if port == SCHEMES[scheme] else f"{host}:{port}"


class TargetRefused(ValidationFailed):
    code = "webhook_target_refused"


def address_allowed(address: str) -> bool:
    """A public unicast address: not loopback, private, link-local (cloud metadata), shared, reserved."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _private_allowed() -> bool:
    return bool(getattr(settings, "WEBHOOKS_ALLOW_PRIVATE_TARGETS", False))


def url_split(url: str, *, field: str = "url") -> tuple[str, str, int, str]:
    """(scheme, host, port, path) of an http(s) URL with a host; ValidationFailed otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise TargetRefused(f"{url!r} is not a valid URL.", field=field) from None
    scheme = (parts.scheme or "").lower()
    if scheme not in SCHEMES:
        raise TargetRefused("The URL must start with http:// or https://.", field=field)
    if not parts.hostname:
        raise TargetRefused("The URL must name a host.", field=field)
    if parts.username or parts.password:
        raise TargetRefused("The URL must not carry a user name or password.", field=field)
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return scheme, parts.hostname, port or SCHEMES[scheme], path


def _resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def target_resolve(url: str, *, field: str = "url") -> Target:
    """The URL's target with the one address to connect to; refused (``TargetRefused``) when the name does
    not resolve or resolves to any non-public address (unless private targets are allowed)."""
    scheme, host, port, path = url_split(url, field=field)
    try:
        addresses = _resolve(host, port)
    except (OSError, UnicodeError):
        raise TargetRefused(f"The host {host!r} cannot be resolved.", field=field) from None
    if not addresses:
        raise TargetRefused(f"The host {host!r} cannot be resolved.", field=field)
    if not _private_allowed():
        refused = [a for a in addresses if not address_allowed(a)]
        if refused:
            raise TargetRefused(
                f"The host {host!r} resolves to {refused[0]}, a loopback, private, link-local or reserved address; "
                "webhooks go to public addresses only.",
                field=field,
            )
    return Target(scheme=scheme, host=host, port=port, path=path, address=addresses[0])
