"""The scheduled exports' admin: the form writes through the service, secrets never go back to the browser,
"Run now" runs it (on the worker; here at once) and the run log shows the run; Marketers may do all of this."""

import importlib

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, User
from django.urls import reverse

from exports.models import ExportRun, ScheduledExport
from exports.services import scheduled_export_save
from tests.exports.conftest import Receiver

pytestmark = pytest.mark.django_db

ADD_URL = reverse("admin:exports_scheduledexport_add")
FORM = {
    "name": "nightly", "is_active": "on", "filters": "", "segment_id": "", "format": "csv", "schedule": "daily",
    "daily_at": "03:00", "target": "http", "http_url": "", "http_secret": "", "sftp_host": "", "sftp_port": "22",
    "sftp_user": "", "sftp_password": "", "sftp_private_key": "", "sftp_host_key": "", "sftp_path": "",
}  # fmt: skip


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def marketer_client(client):
    importlib.import_module("crm.migrations.0003_roles").create_roles(apps, None)
    importlib.import_module("exports.migrations.0002_roles").grant(apps, None)
    user = User.objects.create_user("mia@example.com", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name="Marketers"))
    client.force_login(user)
    return client


def test_add_form_saves_through_the_service(admin_client):
    response = admin_client.post(ADD_URL, {**FORM, "http_url": "https://hooks.example.com/p"})
    assert response.status_code == 302, response.context["adminform"].form.errors
    export = ScheduledExport.objects.get()
    assert export.http_secret.startswith("whsec_") and export.next_run_at is not None
    assert export.created_by.username == "admin"


def test_form_errors_name_the_field(admin_client, make_profile):
    response = admin_client.post(ADD_URL, {**FORM, "http_url": "https://x.example.com", "filters": "tags=nope"})
    assert response.status_code == 200
    assert "Unknown tag" in str(response.context["adminform"].form.errors["filters"])
    response = admin_client.post(ADD_URL, {**FORM, "target": "sftp", "sftp_host": "h", "sftp_user": "u"})
    assert "remote path" in str(response.context["adminform"].form.errors) or "path" in str(
        response.context["adminform"].form.errors
    )
    assert not ScheduledExport.objects.exists()


def test_secrets_are_kept_and_never_shown_back(admin_client):
    export = scheduled_export_save(
        export=ScheduledExport(
            name="sftp", target="sftp", sftp_host="files.example.com", sftp_user="u", sftp_password="pa55word-xyz",
            sftp_path="p.csv", schedule="hourly",
        )
    )  # fmt: skip
    url = reverse("admin:exports_scheduledexport_change", args=[export.pk])
    page = admin_client.get(url).text
    assert "pa55word-xyz" not in page
    data = {**FORM, "name": "sftp", "target": "sftp", "sftp_host": "files.example.com", "sftp_user": "u",
            "sftp_path": "q.csv", "schedule": "hourly"}  # fmt: skip
    assert admin_client.post(url, data).status_code == 302
    export.refresh_from_db()
    assert export.sftp_password == "pa55word-xyz" and export.sftp_path == "q.csv"


def test_run_now_and_the_run_log(admin_client, make_profile, receiver, settings, immediate_tasks):
    settings.EXPORT_ALLOW_PRIVATE_TARGETS = True
    make_profile(email="a@example.com")
    export = scheduled_export_save(export=ScheduledExport(name="hook", target="http", http_url=receiver.url,
                                                          schedule="hourly"))  # fmt: skip
    url = reverse("admin:exports_scheduledexport_change", args=[export.pk])
    response = admin_client.post(
        url, {"CHANGE_FORM-action": "run_now", "_selected_action": str(export.pk), "index": 0}, follow=True
    )
    assert response.status_code == 200
    run = ExportRun.objects.get()
    assert run.outcome == "succeeded" and run.rows == 1 and len(receiver.requests) == 1
    assert (run.trigger, run.actor) == ("manual", "user:admin")
    page = admin_client.get(url).text
    assert 'id="export-run-log"' in page and "succeeded" in page and export.http_secret in page
    assert "hook" in admin_client.get(reverse("admin:exports_exportrun_changelist")).text


def test_marketers_run_exports(marketer_client, make_profile):
    response = marketer_client.post(ADD_URL, {**FORM, "http_url": "https://hooks.example.com/p"})
    assert response.status_code == 302
    assert marketer_client.get(reverse("admin:exports_exportrun_changelist")).status_code == 200


def test_scheduled_exports_need_the_export_permission_too(client):
    from django.contrib.auth.models import Permission

    user = User.objects.create_user("nox@example.com", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="exports"))
    client.force_login(user)
    assert client.get(ADD_URL).status_code == 403
    assert client.get(reverse("admin:exports_scheduledexport_changelist")).status_code == 200  # may look


def test_the_list_shows_each_exports_last_run(admin_client, django_assert_max_num_queries):
    from django.utils import timezone

    for name in ("a", "b", "c"):
        export = scheduled_export_save(
            export=ScheduledExport(name=name, http_url="https://x.example.com", schedule="hourly")
        )
        ExportRun.objects.create(export=export, trigger="manual", started_at=timezone.now(), outcome="failed")
    with django_assert_max_num_queries(12):
        page = admin_client.get(reverse("admin:exports_scheduledexport_changelist")).text
    assert page.count("export-failed") == 3
