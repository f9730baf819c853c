"""The imports' admin pages: permissions, the wizard's refusals, the job page's status, integrations' secrets."""

import importlib
import json
import re

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from imports.models import ImportJob, Integration, SavedMapping

roles = importlib.import_module("crm.migrations.0003_roles")
import_roles = importlib.import_module("imports.migrations.0002_roles")


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def marketer_client(client, db):
    roles.create_roles(apps, None)
    import_roles.grant(apps, None)
    user = User.objects.create_user("mia", password="x", is_staff=True)
    user.groups.add(Group.objects.get(name="Marketers"))
    client.force_login(user)
    return client


def upload(client, content=b"email;name\nann@example.com;Ann\n", name="people.csv"):
    return client.post(reverse("admin:imports_importjob_wizard"), {"file": SimpleUploadedFile(name, content)})


def test_marketers_import_but_do_not_manage_integrations(marketer_client):
    assert marketer_client.get(reverse("admin:imports_importjob_wizard")).status_code == 200
    assert marketer_client.get(reverse("admin:imports_savedmapping_add")).status_code == 200
    assert marketer_client.get(reverse("admin:imports_integration_changelist")).status_code == 403


def test_a_mapping_that_names_no_identifier_is_refused_with_the_reason(marketer_client):
    assert upload(marketer_client).status_code == 302
    page = marketer_client.get(reverse("admin:imports_importjob_wizard_mapping"))
    assert 'value="email"' in page.text  # guessed from the header
    response = marketer_client.post(
        reverse("admin:imports_importjob_wizard_mapping"), {"to_0": "", "to_1": "firstName", "run": "Run"}
    )
    assert response.status_code == 200
    assert "names no identifier" in response.text
    assert not ImportJob.objects.exists()


def test_dry_run_from_the_wizard_and_the_job_status(marketer_client, django_capture_on_commit_callbacks):
    upload(marketer_client)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = marketer_client.post(
            reverse("admin:imports_importjob_wizard_mapping"),
            {"to_0": "email", "to_1": "firstName", "transform_1": "upper", "save_as": "people", "dry_run": "Dry"},
        )
    imp = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("admin:imports_importjob_job", args=[imp.pk])
    assert len(callbacks) == 1
    assert imp.dry_run and imp.job.actor == "user:mia"
    assert imp.mapping == {
        "columns": {"email": {"to": "email"}, "name": {"to": "firstName", "transform": ["trim", "upper"]}}
    }
    assert SavedMapping.objects.get(name="people").mapping == imp.mapping
    status = marketer_client.get(reverse("admin:imports_importjob_status", args=[imp.pk])).json()
    assert status["status"] == "queued" and status["dryRun"] is True


def test_integration_secret_is_shown_once(admin_client):
    mapping = {"columns": {"mail": {"to": "email"}}}
    response = admin_client.post(
        reverse("admin:imports_integration_add"),
        {"slug": "shop", "name": "Shop", "mapping": json.dumps(mapping), "enabled": "on", "_save": "Save"},
    )
    assert response.status_code == 200, response.text
    integration = Integration.objects.get()
    (secret,) = re.findall(r'id="integration-secret"[^>]*value="([^"]+)"', response.text)
    assert integration.secret == secret
    assert "no-store" in response["Cache-Control"]
    page = admin_client.get(reverse("admin:imports_integration_change", args=[integration.pk]))
    assert secret not in page.text


def test_integration_with_a_bad_mapping_is_refused(admin_client):
    response = admin_client.post(
        reverse("admin:imports_integration_add"),
        {"slug": "shop", "mapping": json.dumps({"columns": {"x": {"to": "nickname"}}}), "_save": "Save"},
    )
    assert response.status_code == 200 and "Unknown target" in response.text
    assert not Integration.objects.exists()


def test_the_list_and_the_job_page_of_a_finished_import(marketer_client):
    import io

    from imports.services import import_create, import_run

    imp = import_create(
        file=io.BytesIO(b"email\nann@example.com\nbroken\n"),
        name="people.csv",
        mapping={"columns": {"email": {"to": "email"}}},
        source="tests",
    )
    import_run(job_id=imp.pk)
    listing = marketer_client.get(reverse("admin:imports_importjob_changelist"))
    assert listing.status_code == 200 and "people.csv" in listing.text and "100.0 %" in listing.text
    page = marketer_client.get(reverse("admin:imports_importjob_change", args=[imp.pk]), follow=True)
    assert page.status_code == 200 and 'data-count="created">1<' in page.text
    report = marketer_client.get(reverse("admin:imports_importjob_report", args=[imp.pk]))
    assert b"".join(report.streaming_content).decode().splitlines()[1].startswith("3,error,email.invalid")


def test_a_dry_run_then_the_run_from_the_job_page(marketer_client, django_capture_on_commit_callbacks):
    import io

    from django.core.files.storage import default_storage

    from imports.services import import_create, import_run
    from profiles.models import Profile

    dry = import_create(
        file=io.BytesIO(b"email\nann@example.com\n"),
        name="people.csv",
        mapping={"columns": {"email": {"to": "email"}}},
        dry_run=True,
        source="tests",
    )
    with django_capture_on_commit_callbacks(execute=True):
        import_run(job_id=dry.pk)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = marketer_client.post(reverse("admin:imports_importjob_run", args=[dry.pk]))
    real = ImportJob.objects.get(dry_run=False)
    assert response["Location"] == reverse("admin:imports_importjob_job", args=[real.pk])
    assert len(callbacks) == 1
    stored = real.file.name
    with django_capture_on_commit_callbacks(execute=True):
        import_run(job_id=real.pk)
    assert Profile.objects.filter(email="ann@example.com").exists()
    assert not default_storage.exists(stored)  # the run's copy left with the run
    dry.refresh_from_db()
    assert default_storage.exists(dry.file.name)  # the dry run's stays until its job is purged
