"""A marketer creates a scheduled export in the admin, runs it now and reads its run log (Chromium)."""

import csv
import io

import pytest
from standardwebhooks import Webhook

from exports.models import ScheduledExport
from profiles.services import ProfileInput, profile_upsert
from tests.browser.conftest import PASSWORD
from tests.exports.conftest import Receiver

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def test_marketer_creates_a_scheduled_export_runs_it_and_reads_its_log(
    page, live_server, marketer, receiver, settings, immediate_tasks, screenshots
):
    settings.EXPORT_ALLOW_PRIVATE_TARGETS = True
    for email in ("ola@example.com", "=evil@example.com"):
        profile_upsert(
            data=ProfileInput(identifiers={"email": email}, fields={"city": "Kraków"}), source="t", actor="t"
        )

    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", marketer.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    page.get_by_role("link", name="Scheduled exports").first.click()
    page.get_by_role("link", name="Add scheduled export").click()

    page.fill("#id_name", "Shop CRM nightly")
    page.fill("#id_filters", "city=Kraków")
    page.select_option("#id_format", "csv")
    page.select_option("#id_schedule", "daily")
    page.fill("#id_daily_at", "03:30")
    page.select_option("#id_target", "http")
    page.fill("#id_http_url", receiver.url)
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")
    export = ScheduledExport.objects.get(name="Shop CRM nightly")
    assert export.next_run_at is not None and export.daily_at.hour == 3
    assert "No runs yet." in page.locator(".field-run_log").inner_text()

    page.select_option("select[name='CHANGE_FORM-action']", "run_now")
    page.locator("button[name=index], input[name=index]").first.click()
    page.wait_for_selector("#export-run-log")
    log = page.locator("#export-run-log tbody tr").first
    cells = [text.lower() for text in log.locator("td").all_inner_texts()]
    assert cells[1:5] == ["manual (user:mia@example.com)", "1", "succeeded", "2"]
    assert int(cells[5].replace(",", "")) > 0
    assert cells[7].startswith("post http://127.0.0.1")
    page.screenshot(path=screenshots / "scheduled-export.png", full_page=True)

    ((headers, body),) = receiver.requests
    Webhook(export.http_secret).verify(body, headers, json_parse=False)
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert sorted(r["email"] for r in rows) == ["'=evil@example.com", "ola@example.com"]
