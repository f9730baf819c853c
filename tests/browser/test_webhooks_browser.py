"""The webhooks admin in a real browser: Admin staff read a message's attempts in the log and resend it."""

import pytest

from tests.browser.conftest import PASSWORD
from tests.webhooks.conftest import Receiver
from webhooks.delivery import deliver_due
from webhooks.models import EventType, Message
from webhooks.services import subscription_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def test_message_log_and_resend(page, live_server, staff, receiver, make_profile, settings, screenshots):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    subscription, _ = subscription_create(url=receiver.url, events=[EventType.PROFILE_CREATED])
    profile = make_profile(email="ada.lovelace@example.com")
    receiver.default = 503
    deliver_due()
    message = Message.objects.get()

    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", staff.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")

    # From the subscription to its message log.
    page.goto(f"{live_server.url}/admin/webhooks/subscription/")
    page.get_by_role("link", name="Message log").click()
    page.wait_for_url(f"**/admin/webhooks/message/?subscription__id__exact={subscription.pk}")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1
    assert "profile.created" in rows.first.inner_text() and str(profile.pk) in rows.first.inner_text()
    rows.first.locator("th a").first.click()
    page.wait_for_url(f"**/admin/webhooks/message/{message.pk}/change/**")

    attempts = page.locator("table.webhook-attempts tbody tr")
    assert attempts.count() == 1
    assert "503" in attempts.first.inner_text() and "answer 503" in attempts.first.inner_text()
    assert message.webhook_id in page.content()
    assert page.locator("pre.webhook-payload").inner_text().count("ada.lovelace@example.com") == 1
    page.screenshot(path=str(screenshots / "webhook-message.png"), full_page=True)

    # Resend from the message itself; the worker sends it again with the same webhook-id.
    receiver.default = 200
    page.locator("#message_form .actions select").select_option("resend")
    page.locator("#message_form .actions button[type=submit]").click()
    page.wait_for_selector("ul.messagelist li.success")
    assert "will be sent again" in page.locator("ul.messagelist").inner_text()
    deliver_due()
    page.goto(f"{live_server.url}/admin/webhooks/message/{message.pk}/change/")
    assert page.locator("table.webhook-attempts tbody tr").count() == 2
    assert "delivered" in page.locator(".field-state").inner_text().lower()
    assert [r.headers["webhook-id"] for r in receiver.requests] == [message.webhook_id] * 2
