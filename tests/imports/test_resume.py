"""A worker killed with SIGKILL mid-file: running the job again finishes it, neither losing nor doubling a line."""

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

from crm.models import Job
from imports.models import ImportJob
from imports.services import import_create, import_run
from profiles.models import Event, Profile

ROOT = Path(__file__).resolve().parents[2]
LINES = 3000


def database_url() -> str:
    s = connection.settings_dict
    host = quote(s["HOST"] or "", safe="")
    auth = quote(s["USER"] or "", safe="") + (f":{quote(s['PASSWORD'], safe='')}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{host}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.mark.parametrize("phase", [ImportJob.Phase.STAGING, ImportJob.Phase.WRITING])
@pytest.mark.django_db(transaction=True)
def test_kill_and_resume(settings, tmp_path, phase):
    settings.MEDIA_ROOT = tmp_path / "media"
    content = "email,name,n\n" + "".join(f"person{i}@example.com,P{i},{i}\n" for i in range(LINES))
    # A duplicate late in the file: the last line wins even across the kill.
    content += "person5@example.com,Last,5\n"
    mapping = {"columns": {"email": {"to": "email"}, "name": {"to": "firstName"}, "n": {"to": "attributes.n"}}}
    imp = import_create(file=io.BytesIO(content.encode()), name="big.csv", mapping=mapping, source="tests")
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DJANGO_SETTINGS_MODULE": "crm.settings_test",
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "IMPORT_CHUNK_ROWS": "50",
        "DB_POOL_MIN_SIZE": "1",
    }
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "import_profiles", "--resume", str(imp.pk)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            state = ImportJob.objects.get(pk=imp.pk)
            if phase == ImportJob.Phase.STAGING and state.records_read >= 200:
                break
            if phase == ImportJob.Phase.WRITING and state.phase == phase and state.records_written >= 200:
                break
            assert worker.poll() is None, worker.stderr.read().decode()[-2000:]
            time.sleep(0.02)
        else:
            pytest.fail("the import made no progress")
        worker.send_signal(signal.SIGKILL)
    finally:
        worker.wait(timeout=30)
    killed = ImportJob.objects.select_related("job").get(pk=imp.pk)
    assert killed.job.status == Job.Status.RUNNING  # cut off: nobody recorded an end
    if phase == ImportJob.Phase.STAGING:
        assert killed.phase == phase and killed.records_read < LINES + 1
    else:
        assert killed.records_written < LINES
    finished = import_run(job_id=imp.pk)
    assert finished.job.status == Job.Status.DONE
    assert finished.job.counts["created"] == LINES
    assert finished.job.counts["superseded"] == 1
    assert finished.job.counts["failed"] == 0
    assert finished.records_read == LINES + 1
    assert Profile.objects.count() == LINES
    assert Event.objects.filter(action="profile.created").count() == LINES
    assert Profile.objects.get(email="person5@example.com").first_name == "Last"
    assert Profile.objects.get(email="person2999@example.com").attributes == {"n": "2999"}
