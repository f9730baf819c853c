"""Connections to addresses that users configure (webhook receivers, export targets): the SSRF rules.

A target's name is resolved once; every address it resolves to must be public (not loopback, private,
link-local, which includes cloud metadata, shared, reserved or multicast) unless the caller allows private
targets; the connection then goes to the checked address, so a name cannot resolve to a public address for
the check and to 127.0.0.1 for the connection (DNS rebinding). HTTPS still verifies the certificate against
the name. No redirect is ever followed (``http.client`` follows none).
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from crm.errors import ValidationFailed

SCHEMES = {"http": 80, "https": 443}


class TargetRefused(ValidationFailed):
    code = "target_refused"


@dataclass(frozen=True)
class Target:
    """A URL split for a pinned connection: ``address`` is the checked IP to connect to."""

    scheme: str
    host: str
    port: int
    path: str  # path and query
    address: str

    @property
    def host_header(self) -> str:
        return host_header(self.scheme, self.host, self.port)


def host_header(scheme: str, host: str, port: int) -> str:
    """The ``Host`` header of a request to this URL's host (the port only when not the scheme's own)."""
    host = f"[{host}]" if ":" in host else host
    return host if port == SCHEMES.get(scheme) else f"{host}:{port}"


def address_allowed(address: str) -> bool:
    """A public unicast address: not loopback, private, link-local (cloud metadata), shared, reserved."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


# Names that never leave the machine or the local network, refused without asking DNS (RFC 6761, RFC 6762, and
# the suffixes cloud providers and home routers answer for their own hosts).
LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")
LOCAL_SUFFIXES = (".localhost", ".local", ".localdomain", ".internal", ".home.arpa", ".lan", ".intranet", ".corp")


def host_public_without_dns(host: str) -> bool:
    """Whether a URL's host may be public, decided without resolving it (for checks on the write path): a literal
    address must be public (``address_allowed``), including the shorthand IPv4 forms browsers accept (``127.1``,
    ``0x7f.0.0.1``, ``2130706433``); a name must not be a local one (``localhost``, ``*.internal`` …) nor end in a
    number. A public-looking name may still resolve to a private address: only a connection checks that."""
    host = host.strip().lower().rstrip(".").strip("[]")
    if not host:
        return False
    try:
        return address_allowed(host)
    except ValueError:
        pass
    last = host.rsplit(".", 1)[-1]
    if last.isdigit() or last.startswith("0x"):
        # Browsers read a host ending in a number as an IPv4 address, in the legacy inet_aton forms.
        try:
            return address_allowed(socket.inet_ntoa(socket.inet_aton(host)))
        except OSError:
            return False
    return host not in LOCAL_NAMES and not host.endswith(LOCAL_SUFFIXES) and "." in host


def url_split(url: str, *, field: str = "url", refused: type[ValidationFailed] = TargetRefused):
    """(scheme, host, port, path) of an http(s) URL with a host; ``refused`` raised otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise refused(f"{url!r} is not a valid URL.", field=field) from None
    scheme = (parts.scheme or "").lower()
    if scheme not in SCHEMES:
        raise refused("The URL must start with http:// or https://.", field=field)
    if not parts.hostname:
        raise refused("The URL must name a host.", field=field)
    if parts.username or parts.password:
        raise refused("The URL must not carry a user name or password.", field=field)
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return scheme, parts.hostname, port or SCHEMES[scheme], path


def address_resolve(
    host: str,
    port: int,
    *,
    allow_private: bool,
    field: str,
    refused: type[ValidationFailed] = TargetRefused,
    setting: str = "",
) -> str:
    """The one address to connect to for ``host``; ``refused`` when the name does not resolve, or resolves to
    any non-public address while private targets are not allowed (``setting`` names the switch in the message)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        infos = []
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise refused(f"The host {host!r} cannot be resolved.", field=field)
    if not allow_private:
        bad = [a for a in addresses if not address_allowed(a)]
        if bad:
            allow = f" (set {setting}=1 to allow it)" if setting else ""
            raise refused(
                f"The host {host!r} resolves to {bad[0]}, a loopback, private, link-local or reserved address; "
                f"connections go to public addresses only{allow}.",
                field=field,
            )
    return addresses[0]


def target_resolve(
    url: str,
    *,
    allow_private: bool,
    field: str = "url",
    refused: type[ValidationFailed] = TargetRefused,
    setting: str = "",
) -> Target:
    """The URL's target with the checked address to connect to (see ``address_resolve``)."""
    scheme, host, port, path = url_split(url, field=field, refused=refused)
    address = address_resolve(host, port, allow_private=allow_private, field=field, refused=refused, setting=setting)
    return Target(scheme=scheme, host=host, port=port, path=path, address=address)


class PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the checked address, whatever the name resolves to now, and only when told to
    (``auto_open`` off: http.client never reconnects on its own, so a kept connection never reaches a new,
    unchecked address)."""

    auto_open = 0

    def __init__(self, target: Target, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout)
        self.address = target.address

    def connect(self):
        self.sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


_tls_context: ssl.SSLContext | None = None


def _tls() -> ssl.SSLContext:
    global _tls_context
    if _tls_context is None:
        _tls_context = ssl.create_default_context()
    return _tls_context


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """The same over TLS; the certificate is verified against the name."""

    auto_open = 0

    def __init__(self, target: Target, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout, context=_tls())
        self.address = target.address

    def connect(self):
        sock = socket.create_connection((self.address, self.port), self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def pinned_connection(target: Target, timeout: float) -> http.client.HTTPConnection:
    """A connection to the target's checked address, opened (it never opens again on its own)."""
    connection_class = PinnedHTTPSConnection if target.scheme == "https" else PinnedHTTPConnection
    conn = connection_class(target, timeout)
    try:
        conn.connect()
    except BaseException:
        conn.close()
        raise
    return conn
