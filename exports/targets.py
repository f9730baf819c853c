"""Where a scheduled export's file goes: an HTTP endpoint (one signed POST) or an SFTP server (paramiko).

HTTP: the file is the body of a POST, signed as Standard Webhooks sign a message (``webhook-id``,
``webhook-timestamp``, ``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">``), so a receiver
checks it with any Standard Webhooks library (``standardwebhooks.Webhook(secret).verify(body, headers)``). The
HMAC is computed over the spooled file in one pass, and the body is sent from the file: memory stays flat.

SFTP: the file is uploaded under a temporary name next to the target and renamed when complete, so a reader
never sees half a file. The server's host key is checked against the one stored on the export (kept from the
first successful connection when none was given).

Targets on private, loopback or link-local addresses are refused unless ``EXPORT_ALLOW_PRIVATE_TARGETS`` is on;
the name is resolved once and the connection goes to the checked address (``crm.outbound``).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import io
import math
import socket
import time
from typing import IO

from django.conf import settings
from django.utils import timezone

from crm.errors import ValidationFailed
from crm.outbound import Target, address_resolve, pinned_connection, url_split

CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson; charset=utf-8"}


class PushFailed(Exception):
    """The target refused the file or could not be reached."""


def _address(host: str, port: int, *, field: str) -> str:
    """The checked address to connect to (refused targets fail the run, naming the setting that allows them)."""
    try:
        return address_resolve(
            host,
            port,
            allow_private=settings.EXPORT_ALLOW_PRIVATE_TARGETS,
            field=field,
            setting="EXPORT_ALLOW_PRIVATE_TARGETS",
        )
    except ValidationFailed as exc:
        raise PushFailed(exc.message) from None


# --- HTTP ---------------------------------------------------------------------------------------------------------


def signing_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret: the bytes of the base64 after ``whsec_``.

    Decoded strictly (the reference library skips stray characters); tests check signatures made with this key
    against the reference library's verification."""
    text = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except ValueError:
        key = b""
    if not key:
        raise ValidationFailed(
            "The signing secret must be whsec_ followed by base64 (leave it empty to have one made).",
            field="http_secret",
        )
    return key


def signature(secret: str, *, msg_id: str, timestamp: int, body: IO[bytes]) -> str:
    """``v1,<base64 HMAC-SHA256>`` of ``msg_id.timestamp.body``, reading the body once from where it stands."""
    mac = hmac.new(signing_key(secret), f"{msg_id}.{timestamp}.".encode(), hashlib.sha256)
    while block := body.read(1024 * 1024):
        mac.update(block)
    return "v1," + base64.b64encode(mac.digest()).decode()


def http_push(export, file: IO[bytes], *, size: int, msg_id: str) -> str:
    try:
        scheme, host, port, path = url_split(export.http_url, field="http_url")
    except ValidationFailed as exc:
        raise PushFailed(exc.message) from None
    target = Target(scheme, host, port, path, _address(host, port, field="http_url"))
    timestamp = math.floor(time.time())
    start = file.tell()
    sig = signature(export.http_secret, msg_id=msg_id, timestamp=timestamp, body=file)
    file.seek(start)
    headers = {
        "Content-Type": CONTENT_TYPES[export.format],
        "Content-Length": str(size),
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sig,
        "User-Agent": "crm-export/1",
    }
    conn = None
    try:
        conn = pinned_connection(target, settings.EXPORT_HTTP_TIMEOUT_SECONDS)
        conn.request("POST", target.path, body=file, headers={"Host": target.host_header, **headers})
        response = conn.getresponse()
        answer = response.read(500).decode("utf-8", "replace")
    except OSError as exc:
        raise PushFailed(f"POST {export.http_url} failed: {exc}") from None
    finally:
        if conn is not None:
            conn.close()
    if not 200 <= response.status < 300:
        raise PushFailed(f"POST {export.http_url} answered {response.status}: {answer.strip()[:300]}")
    return f"POST {export.http_url} → {response.status}"


# --- SFTP ---------------------------------------------------------------------------------------------------------


def private_key_load(text: str):
    """A paramiko key from OpenSSH or PEM text (Ed25519, ECDSA or RSA)."""
    import paramiko

    for key_class in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return key_class.from_private_key(io.StringIO(text.strip() + "\n"))
        except (paramiko.SSHException, ValueError):
            continue
    raise ValidationFailed(
        "The private key is not an unencrypted OpenSSH or PEM Ed25519, ECDSA or RSA key.", field="sftp_private_key"
    )


def host_key_line(key) -> str:
    return f"{key.get_name()} {key.get_base64()}"


def remote_path(pattern: str, when) -> str:
    return when.astimezone(timezone.UTC).strftime(pattern)


def sftp_push(export, file: IO[bytes], *, started_at) -> str:
    import paramiko

    host, port = export.sftp_host, export.sftp_port
    address = _address(host, port, field="sftp_host")
    path = remote_path(export.sftp_path, started_at)
    try:
        sock = socket.create_connection((address, port), timeout=settings.EXPORT_SFTP_TIMEOUT_SECONDS)
    except OSError as exc:
        raise PushFailed(f"SFTP {host}:{port} cannot be reached: {exc}") from None
    transport = paramiko.Transport(sock)
    try:
        transport.banner_timeout = transport.auth_timeout = settings.EXPORT_SFTP_TIMEOUT_SECONDS
        try:
            transport.start_client(timeout=settings.EXPORT_SFTP_TIMEOUT_SECONDS)
        except paramiko.SSHException as exc:
            raise PushFailed(f"SFTP {host}:{port}: no SSH session ({exc})") from None
        shown = host_key_line(transport.get_remote_server_key())
        expected = " ".join(export.sftp_host_key.split()[:2])
        if expected and expected != shown:
            raise PushFailed(f"SFTP {host}:{port} shows host key {shown}, not the one stored on the export.")
        try:
            if export.sftp_private_key:
                transport.auth_publickey(export.sftp_user, private_key_load(export.sftp_private_key))
            else:
                transport.auth_password(export.sftp_user, export.sftp_password)
        except paramiko.SSHException as exc:
            raise PushFailed(f"SFTP {host}:{port}: login as {export.sftp_user} refused ({exc})") from None
        sftp = paramiko.SFTPClient.from_transport(transport)
        partial = f"{path}.part"
        try:
            sftp.putfo(file, partial, confirm=True)
            try:
                sftp.posix_rename(partial, path)
            except OSError:
                with contextlib.suppress(OSError):
                    sftp.remove(path)
                sftp.rename(partial, path)
        except OSError as exc:
            raise PushFailed(f"SFTP upload to {path} failed: {exc}") from None
        finally:
            sftp.close()
        if not expected:
            type(export).objects.filter(pk=export.pk, sftp_host_key="").update(sftp_host_key=shown)
    finally:
        transport.close()
    return f"sftp://{export.sftp_user}@{host}:{port}/{path.lstrip('/')}"


def push(export, file: IO[bytes], *, size: int, run) -> str:
    """Send the spooled file to the export's target; returns where it went, raises PushFailed."""
    if export.target == "http":
        return http_push(export, file, size=size, msg_id=f"export-run-{run.pk}")
    return sftp_push(export, file, started_at=run.started_at)
