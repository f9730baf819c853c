"""``manage.py deploy_check`` (make deploy-check): check --deploy, migrations applied, static files collected."""

import os
import secrets
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from django.core.management import call_command
from django.db import connection

from crm.management.commands.deploy_check import static_problems, unapplied_migrations

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_the_test_database_has_every_migration_applied():
    assert unapplied_migrations() == []


def test_static_files_missing_then_collected_then_changed(settings, tmp_path):
    settings.STATIC_ROOT = tmp_path / "static"
    assert "does not exist" in static_problems()[0]
    call_command("collectstatic", "--no-input", verbosity=0)
    assert static_problems() == []
    (tmp_path / "static" / "crm" / "favicon.ico").write_bytes(b"old")
    (tmp_path / "static" / "admin" / "css" / "base.css").unlink()
    assert sorted(static_problems()) == [
        "admin/css/base.css is not collected",
        "crm/favicon.ico changed since it was collected",
    ]


@pytest.mark.django_db
def test_the_command_in_a_production_environment(tmp_path):
    s = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "crm.settings",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "crm.example.com",
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "STATIC_ROOT": str(tmp_path / "static"),
        "DATABASE_URL": f"postgres://{s['USER']}:@{quote(s['HOST'], safe='')}:{s['PORT']}/{s['NAME']}",
    }

    def run(*args):
        return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)

    before = run("deploy_check")
    assert before.returncode != 0
    assert "check --deploy: ok" in before.stdout and "migrations: all applied" in before.stdout
    assert "Not ready to deploy: static files." in before.stderr
    assert run("collectstatic", "--no-input", "-v", "0").returncode == 0
    after = run("deploy_check")
    assert after.returncode == 0, after.stderr[-3000:]
    assert "Ready to deploy." in after.stdout
