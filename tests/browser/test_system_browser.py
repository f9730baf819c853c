"""The System page in a real browser under the CSP: Admin staff reach it from the admin index and read its figures
and charts; a Marketer has no link to it and is refused at its address."""

from datetime import timedelta

import pytest
from django.utils import timezone

from crm.models import Job, WorkerHeartbeat
from crm.system import system_sample_record
from tests.browser.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def login(page, live_server, user):
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")


def test_admin_staff_read_the_system_page(page, live_server, staff, screenshots):
    now = timezone.now()
    WorkerHeartbeat.objects.create(
        worker_id="worker-1:4242", kind="db", hostname="worker-1", pid=4242, queues=["*"],
        started_at=now - timedelta(hours=3), seen_at=now,
    )  # fmt: skip
    Job.objects.create(
        kind="batch", source="tests", status=Job.Status.FAILED, message="Lost the connection to the database.",
        finished_at=now - timedelta(minutes=5),
    )  # fmt: skip
    for minutes in range(90, 0, -1):  # an hour and a half of samples, as the recurring task takes them
        system_sample_record(now=now - timedelta(minutes=minutes))

    login(page, live_server, staff)
    page.get_by_role("link", name="System", exact=True).first.click()
    page.wait_for_url(f"{live_server.url}/admin/crm/systemsample/")
    assert page.locator("h1").inner_text() == "System"
    workers = page.locator("#system-workers tbody tr")
    assert workers.count() == 1 and "worker-1:4242" in workers.first.inner_text()
    assert "alive" in workers.first.inner_text()
    queues = page.locator("#system-queues tbody").inner_text()
    for queue in ("default", "batches", "deliveries", "recurring", "segment refresh"):
        assert queue in queues
    assert "Lost the connection to the database." in page.locator("#system-failures").inner_text()
    assert "No read replica is configured" in page.locator("#system-replica").inner_text()
    assert page.locator("#system-disk tbody tr").count() == 2
    # The charts are inline SVG drawn on the server, visible and with a line where samples were taken.
    charts = page.locator("svg.spark")
    assert charts.count() >= 12
    assert page.locator("#system-workers svg.spark polyline").count() >= 1
    box = page.locator("#system-queues svg.spark").first.bounding_box()
    assert box is not None and box["width"] == 240 and box["height"] == 44
    assert "highest" in page.locator("#system-disk svg.spark").first.get_attribute("aria-label")
    page.screenshot(path=str(screenshots / "system-page.png"), full_page=True)


def test_a_marketer_has_no_system_page(page, live_server, marketer):
    login(page, live_server, marketer)
    assert page.get_by_role("link", name="System", exact=True).count() == 0
    response = page.goto(f"{live_server.url}/admin/crm/systemsample/")
    assert response is not None and response.status == 403
