"""The import wizard in a real browser: upload a Windows-1250 CSV, see what was detected and the first rows,
map the columns, dry run, run for real, watch the job page update itself to its finished state, download the
report."""

import importlib
import re

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, User
from playwright.sync_api import expect

from consents.models import ConsentState
from imports.models import ImportJob
from imports.services import import_run
from profiles.models import Profile

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

roles = importlib.import_module("crm.migrations.0003_roles")
import_roles = importlib.import_module("imports.migrations.0002_roles")
default_agreements = importlib.import_module("consents.migrations.0002_default_agreements")
PASSWORD = "correct horse battery"
CSV = (
    "E-mail;First name;City;Newsletter;Note\n"
    "zofia@example.com;zofia;Łódź;Y;a\n"
    "jan@example.com;jan;Kraków;N;b\n"
    "broken-address;x;Gdańsk;Y;c\n"
)


@pytest.fixture
def marketer(db, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    default_agreements.create_defaults(apps, None)
    roles.create_roles(apps, None)
    import_roles.grant(apps, None)
    user = User.objects.create_user("mia@example.com", password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name="Marketers"))
    return user


def test_wizard_from_upload_to_the_finished_job_page(page, live_server, marketer, tmp_path, screenshots):
    data = tmp_path / "kontakty.csv"
    data.write_bytes(CSV.encode("cp1250"))
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", marketer.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")

    page.goto(f"{live_server.url}/admin/imports/importjob/add/")
    page.wait_for_url(re.compile(r".*/wizard/$"))
    page.set_input_files("#id_file", str(data))
    page.click("#upload-submit")

    page.wait_for_url(re.compile(r".*/wizard/mapping/$"))
    expect(page.locator('[data-detected="format"]')).to_have_text("csv")
    expect(page.locator('[data-detected="encoding"]')).to_have_text("cp1250")
    expect(page.locator('[data-detected="delimiter"]')).to_have_text(";")
    expect(page.locator("table.import-mapping")).to_contain_text("Łódź")  # the preview of the first rows
    expect(page.locator('input[data-column="E-mail"]')).to_have_value("email")  # guessed from the header
    expect(page.locator('input[data-column="City"]')).to_have_value("city")
    page.fill('input[data-column="First name"]', "firstName")
    page.select_option('select[aria-label="Transform of First name"]', "title")
    page.fill('input[data-column="Newsletter"]', "agreements.email")
    page.screenshot(path=str(screenshots / "import-wizard-mapping.png"), full_page=True)
    page.click("#dry-run")

    page.wait_for_url(re.compile(r".*/job/$"))
    dry = ImportJob.objects.get(dry_run=True)
    expect(page.locator('[data-field="status"]')).to_have_text("queued")
    import_run(job_id=dry.pk)  # the worker's part
    expect(page.locator('[data-field="status"]')).to_have_text("done")  # the page polls its status
    expect(page.locator('[data-count="created"]')).to_have_text("2")
    expect(page.locator('[data-count="failed"]')).to_have_text("1")
    expect(page.locator('[data-field="percent"]')).to_have_text("100")
    assert not Profile.objects.exists()

    page.click("#run-for-real")
    page.wait_for_url(re.compile(r".*/job/$"))
    real = ImportJob.objects.get(dry_run=False)
    assert f"/{real.pk}/job/" in page.url
    import_run(job_id=real.pk)
    expect(page.locator('[data-field="status"]')).to_have_text("done")
    expect(page.locator('[data-count="created"]')).to_have_text("2")
    expect(page.locator('[data-field="errorCount"]')).to_have_text("1")
    page.screenshot(path=str(screenshots / "import-job-done.png"), full_page=True)
    with page.expect_download() as download_info:
        page.click("#report-link")
    report = open(download_info.value.path(), encoding="utf-8").read()  # noqa: SIM115
    assert "broken-address;x;Gdańsk;Y;c" in report and "email.invalid" in report

    zofia = Profile.objects.get(email="zofia@example.com")
    assert zofia.first_name == "Zofia" and zofia.city == "Łódź"
    assert ConsentState.objects.get(profile=zofia, agreement__key="email").status == "granted"
