"""Admin staff download a person's data from the card, then erase the profile after a confirmation naming what goes."""

import json
import uuid

import pytest
from django.contrib.auth.models import Group, Permission

from privacy.models import Erasure
from profiles.models import Event, Profile
from profiles.services import ProfileInput, profile_upsert
from tests.browser.test_card_browser import log_in
from tests.profiles.test_admin_card import insert_events

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def piotr(db):
    visitor = profile_upsert(
        data=ProfileInput(identifiers={"uuid": str(uuid.uuid4())}), source="tests", actor="tests"
    ).profile
    profile = profile_upsert(
        data=ProfileInput(
            identifiers={"email": "piotr.zielinski@example.com"},
            fields={"first_name": "Piotr", "last_name": "Zieliński", "city": "Poznań"},
            attributes={"shoeSize": 44},
        ),
        source="import",
        actor="tests",
    ).profile
    # The visitor's uuid turns up with the e-mail: the visitor is merged in.
    merged = profile_upsert(
        data=ProfileInput(identifiers={"email": "piotr.zielinski@example.com", "uuid": visitor.uuid}),
        source="tests",
        actor="tests",
    )
    assert merged.merged_client_ids == [visitor.pk]
    insert_events(profile, 15)
    return profile, visitor.pk


def test_staff_download_the_data_then_erase_the_profile(page, live_server, staff, piotr, screenshots):
    profile, visitor_id = piotr
    log_in(page, live_server, staff)
    page.goto(f"{live_server.url}/admin/profiles/profile/{profile.pk}/change/")

    with page.expect_download() as info:
        page.get_by_role("link", name="Download data (JSON)").click()
    download = info.value
    assert download.suggested_filename == f"profile-{profile.pk}.json"
    document = json.loads(download.path().read_text(encoding="utf-8"))
    assert document["clientId"] == profile.pk
    assert document["profile"]["last_name"] == "Zieliński"
    assert document["attributes"] == {"shoeSize": 44}
    assert len([e for e in document["events"] if e["type"] == "custom"]) == 15
    assert [m["mergedClientId"] for m in document["merges"]] == [visitor_id]

    page.get_by_role("link", name="Erase…").click()
    page.wait_for_url(f"{live_server.url}/admin/profiles/profile/{profile.pk}/delete/")
    confirm = page.locator(".erasure-confirm")
    text = confirm.inner_text()
    assert "Erase Piotr Zieliński" in text and "cannot be undone" in text
    events = Event.objects.filter(profile=profile).count()  # 15 custom, and the system events of its history
    assert events > 15 and f"Events: {events}" in text  # what goes, counted
    assert "Identifiers: 3" in text and "Merged-in profiles: 1" in text
    assert f"merged-in clientIds {visitor_id}" in text and "410 Gone" in text
    page.screenshot(path=str(screenshots / "erasure-confirmation.png"), full_page=True)

    page.get_by_role("button", name="Yes, erase this profile").click()
    page.wait_for_url(f"{live_server.url}/admin/profiles/profile/")
    assert not Profile.objects.filter(pk=profile.pk).exists()
    erasure = Erasure.objects.get(client_id=profile.pk)
    assert (erasure.actor, erasure.source, erasure.merged_client_ids) == ("user:ada@example.com", "admin", [visitor_id])

    # Who asked and when: the read-only list of erasures.
    page.goto(f"{live_server.url}/admin/privacy/erasure/")
    row = page.locator("#result_list tbody tr").first
    assert str(profile.pk) in row.inner_text() and "user:ada@example.com" in row.inner_text()
    row.locator("a").first.click()
    assert "events:" in page.locator(".field-rows").inner_text()


def test_marketers_never_erase_and_download_only_with_the_export_permission(page, live_server, marketer, piotr):
    profile, _ = piotr
    log_in(page, live_server, marketer)
    card = f"{live_server.url}/admin/profiles/profile/{profile.pk}/change/"
    page.goto(card)
    page.locator(".card-header").wait_for()
    assert page.get_by_role("link", name="Erase…").count() == 0
    # A fresh install gives Marketers the export permission: one person's document is an export too.
    assert page.get_by_role("link", name="Download data (JSON)").count() == 1
    Group.objects.get(name="Marketers").permissions.remove(Permission.objects.get(codename="export_profile"))
    page.goto(card)
    page.locator(".card-header").wait_for()
    assert page.get_by_role("link", name="Download data (JSON)").count() == 0
    response = page.goto(f"{live_server.url}/admin/profiles/profile/{profile.pk}/card/download/")
    assert response.status == 403
