"""A real SFTP server for the tests: paramiko's server classes over a local socket, serving a temporary folder.

One user, with a password or a public key; every connection runs in its own thread.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import paramiko
from paramiko import ServerInterface, SFTPAttributes, SFTPHandle, SFTPServer, SFTPServerInterface
from paramiko.sftp import SFTP_FAILURE, SFTP_NO_SUCH_FILE, SFTP_OK


class _Auth(ServerInterface):
    def __init__(self, server: SftpTestServer):
        self.server = server

    def check_auth_password(self, username, password):
        if username == self.server.user and self.server.password and password == self.server.password:
            return paramiko.AUTH_SUCCESSFUL
        return paramiko.AUTH_FAILED

    def check_auth_publickey(self, username, key):
        if username == self.server.user and self.server.client_key is not None and key == self.server.client_key:
            return paramiko.AUTH_SUCCESSFUL
        return paramiko.AUTH_FAILED

    def get_allowed_auths(self, username):
        return "password,publickey"

    def check_channel_request(self, kind, chanid):
        return paramiko.OPEN_SUCCEEDED if kind == "session" else paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED


class _Handle(SFTPHandle):
    def stat(self):
        return SFTPAttributes.from_stat(os.fstat(self.writefile.fileno()))


class _Files(SFTPServerInterface):
    """The served folder, with paths kept inside it."""

    def __init__(self, server, *args, root: Path, **kwargs):
        super().__init__(server, *args, **kwargs)
        self.root = root

    def _local(self, path: str) -> Path:
        local = (self.root / path.lstrip("/")).resolve()
        if self.root.resolve() not in (local, *local.parents):
            raise PermissionError(path)
        return local

    def open(self, path, flags, attr):
        try:
            local = self._local(path)
            fd = os.open(local, flags, 0o644)
            handle = _Handle(flags)
            handle.writefile = handle.readfile = os.fdopen(
                fd, "r+b" if flags & os.O_RDWR else ("wb" if flags & os.O_WRONLY else "rb")
            )
        except OSError as exc:
            return SFTPServer.convert_errno(exc.errno)
        except PermissionError:
            return SFTP_FAILURE
        return handle

    def stat(self, path):
        try:
            return SFTPAttributes.from_stat(os.stat(self._local(path)))
        except OSError as exc:
            return SFTPServer.convert_errno(exc.errno)

    lstat = stat

    def remove(self, path):
        try:
            os.remove(self._local(path))
        except OSError as exc:
            return SFTPServer.convert_errno(exc.errno)
        return SFTP_OK

    def rename(self, oldpath, newpath):
        new = self._local(newpath)
        if new.exists():
            return SFTP_FAILURE
        os.rename(self._local(oldpath), new)
        return SFTP_OK

    def posix_rename(self, oldpath, newpath):
        try:
            os.replace(self._local(oldpath), self._local(newpath))
        except OSError as exc:
            return SFTPServer.convert_errno(exc.errno)
        return SFTP_OK

    def list_folder(self, path):
        local = self._local(path)
        if not local.is_dir():
            return SFTP_NO_SUCH_FILE
        return [SFTPAttributes.from_stat(os.stat(p), p.name) for p in local.iterdir()]


class SftpTestServer:
    def __init__(self, root: Path, *, user="exporter", password="s3cret", client_key=None):
        self.root, self.user, self.password, self.client_key = root, user, password, client_key
        self.host_key = paramiko.Ed25519Key.from_private_key_file(str(_host_key_file(root.parent)))
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.port = self.sock.getsockname()[1]
        self.logins = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def host_key_line(self) -> str:
        return f"{self.host_key.get_name()} {self.host_key.get_base64()}"

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn):
        transport = paramiko.Transport(conn)
        transport.add_server_key(self.host_key)
        transport.set_subsystem_handler("sftp", SFTPServer, _Files, root=self.root)
        try:
            transport.start_server(server=_Auth(self))
            channel = transport.accept(10)
            if channel is None:
                return
            self.logins += 1
            while transport.is_active() and not self._stop.is_set():
                self._stop.wait(0.05)
        except (paramiko.SSHException, EOFError, OSError):
            pass
        finally:
            transport.close()

    def close(self):
        self._stop.set()
        self.sock.close()
        self._thread.join(2)


def _host_key_file(folder: Path) -> Path:
    path = folder / "host_ed25519"
    if not path.exists():
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
        path.write_bytes(pem)
    return path


def openssh_private_key() -> tuple[str, paramiko.PKey]:
    """A new Ed25519 client key: its OpenSSH text and paramiko's key object."""
    import io

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    text = (
        Ed25519PrivateKey.generate()
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption())
        .decode()
    )
    return text, paramiko.Ed25519Key.from_private_key(io.StringIO(text))
