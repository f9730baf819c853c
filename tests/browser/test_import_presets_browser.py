"""The import wizard with the files people bring: a Mailchimp audience export is recognised and its mapping
proposed (the preview shows the items its tag cells give), edited, saved by name and dry run; an XLSX workbook's
named sheet is read, and a list separator typed in the table shows its items on "Preview the mapping"."""

import importlib
import io
import json
import re
from datetime import date

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, User
from openpyxl import Workbook
from playwright.sync_api import expect

from imports.models import ImportJob, SavedMapping
from imports.services import import_run
from profiles.models import Profile
from tests.imports.test_presets import MAILCHIMP_SUBSCRIBED

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

roles = importlib.import_module("crm.migrations.0003_roles")
import_roles = importlib.import_module("imports.migrations.0002_roles")
default_agreements = importlib.import_module("consents.migrations.0002_default_agreements")
PASSWORD = "correct horse battery"


@pytest.fixture
def marketer(db, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    default_agreements.create_defaults(apps, None)
    roles.create_roles(apps, None)
    import_roles.grant(apps, None)
    user = User.objects.create_user("mia@example.com", password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name="Marketers"))
    return user


def log_in(page, live_server, user):
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")


def upload(page, live_server, path, *, sheet=""):
    page.goto(f"{live_server.url}/admin/imports/importjob/wizard/")
    page.set_input_files("#id_file", str(path))
    if sheet:
        page.fill("#id_sheet", sheet)
    page.click("#upload-submit")
    page.wait_for_url(re.compile(r".*/wizard/mapping/$"))


def test_a_mailchimp_export_gets_its_mapping_proposed(page, live_server, marketer, tmp_path, screenshots):
    data = tmp_path / "subscribed_members_export_1a2b3c.csv"
    data.write_text(MAILCHIMP_SUBSCRIBED, encoding="utf-8")
    log_in(page, live_server, marketer)
    upload(page, live_server, data)

    expect(page.locator('[data-detected="preset"]')).to_have_text("Mailchimp audience export")
    expect(page.locator('input[data-column="Email Address"]')).to_have_value("email")
    expect(page.locator('input[aria-label="List separator of TAGS"]')).to_have_value(",")
    tags = page.locator('td.samples[data-column="TAGS"]')
    expect(tags.locator(".items").first.locator(".item")).to_have_text(["Customer", "VIP Club"])
    expect(tags.locator(".items").nth(1).locator(".item")).to_have_text(['Say "hi"', "Customer"])
    proposed = json.loads(page.locator("#mapping-json").input_value())
    assert proposed["constants"] == {"agreements.email": True}
    page.screenshot(path=str(screenshots / "import-wizard-preset.png"), full_page=True)

    proposed["columns"]["NOTES"] = {"skip": True}  # an edit before saving
    page.fill("#mapping-json", json.dumps(proposed, indent=2))
    page.fill("#save-as", "Mailchimp audience")
    page.click("#dry-run")
    page.wait_for_url(re.compile(r".*/job/$"))
    assert SavedMapping.objects.get(name="Mailchimp audience").mapping["columns"]["NOTES"] == {"skip": True}
    import_run(job_id=ImportJob.objects.get(dry_run=True).pk)
    expect(page.locator('[data-count="created"]')).to_have_text("2")
    expect(page.locator('[data-count="failed"]')).to_have_text("1")
    assert not Profile.objects.exists()


def test_an_xlsx_sheet_and_a_list_separator_typed_in_the_table(page, live_server, marketer, tmp_path, screenshots):
    book = Workbook()
    book.active.title = "Read me"
    book.active.append(["The customers are on the next sheet."])
    sheet = book.create_sheet("Customers")
    sheet.append(["E-mail", "Postcode", "Joined", "Groups"])
    sheet.append(["ann@example.com", "02134", date(2021, 3, 4), '"Gold club", vip'])
    sheet.append(["bob@example.com", "00950", date(2022, 5, 6), "newsletter"])
    out = io.BytesIO()
    book.save(out)
    data = tmp_path / "customers.xlsx"
    data.write_bytes(out.getvalue())
    log_in(page, live_server, marketer)
    upload(page, live_server, data, sheet="Customers")

    expect(page.locator('[data-detected="format"]')).to_have_text("xlsx")
    expect(page.locator('[data-detected="sheet"]')).to_have_text("Customers")
    expect(page.locator('td.samples[data-column="Postcode"]')).to_contain_text("02134")
    expect(page.locator('td.samples[data-column="Joined"] > span')).to_have_text(["2021-03-04", "2022-05-06"])
    page.fill('input[data-column="Postcode"]', "zipCode")
    page.fill('input[data-column="Groups"]', "tags")
    page.fill('input[aria-label="List separator of Groups"]', ",")
    page.click("#preview")
    page.wait_for_load_state()
    groups = page.locator('td.samples[data-column="Groups"] .items')
    expect(groups.first.locator(".item")).to_have_text(["Gold club", "vip"])
    page.screenshot(path=str(screenshots / "import-wizard-xlsx.png"), full_page=True)

    page.click("#run")
    page.wait_for_url(re.compile(r".*/job/$"))
    imp = import_run(job_id=ImportJob.objects.get().pk)
    assert imp.format == "xlsx" and imp.mapping["sheet"] == "Customers"
    expect(page.locator('[data-count="created"]')).to_have_text("2")
    ann = Profile.objects.get(email="ann@example.com")
    assert ann.zip_code == "02134" and sorted(t.name for t in ann.tags.all()) == ["Gold club", "vip"]
