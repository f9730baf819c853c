"""A marketer's day in a real browser: log in, find a profile, work on its card; keys stay out of reach."""

import uuid

import pytest

from consents.models import Agreement
from profiles.services import ProfileInput, profile_upsert
from tests.browser.conftest import PASSWORD
from tests.profiles.test_admin_card import insert_events

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def ola(db):
    profile = profile_upsert(
        data=ProfileInput(
            identifiers={"email": "ola.nowak@example.com", "uuid": str(uuid.uuid4()), "phone": "+48 600 700 800"},
            fields={"first_name": "Ola", "last_name": "Nowak", "city": "Kraków", "country_code": "PL"},
        ),
        source="import",
        actor="tests",
    ).profile
    insert_events(profile, 60)
    insert_events(profile, 12, action="product.buy")
    return profile


def log_in(page, live_server, user):
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")


def boxes(page):
    return {c: page.locator(f'[data-column="{c}"]').bounding_box() for c in ("left", "middle", "right")}


def test_marketer_finds_a_profile_and_works_on_its_card(page, live_server, marketer, ola, screenshots):
    log_in(page, live_server, marketer)

    # Search by e-mail from the profiles list, open the card.
    page.goto(f"{live_server.url}/admin/profiles/profile/")
    page.fill("#searchbar", "OLA.NOWAK@example.com")
    page.press("#searchbar", "Enter")
    page.get_by_role("link", name="ola.nowak@example.com").click()
    page.wait_for_selector("#profile-card")

    # Three columns side by side at 1280 px: same top, left to right, no overlap.
    b = boxes(page)
    assert b["left"]["x"] + b["left"]["width"] <= b["middle"]["x"] + 1
    assert b["middle"]["x"] + b["middle"]["width"] <= b["right"]["x"] + 1
    assert abs(b["left"]["y"] - b["middle"]["y"]) < 2 and abs(b["middle"]["y"] - b["right"]["y"]) < 2
    assert b["right"]["x"] + b["right"]["width"] <= 1280
    assert page.locator("svg.card-chart rect.card-chart-bar").count() == 26
    page.screenshot(path=screenshots / "card-1280-before.png")

    # Add a tag.
    page.fill("#card-tag-name", "VIP")
    page.click("button:has-text('Add tag')")
    page.wait_for_selector(".card-tag:has-text('VIP')")
    assert page.locator(".tl-entry .tl-title", has_text="Tag VIP added").count() == 1
    assert "by mia@example.com" in page.locator(".tl-tag").first.inner_text()

    # Change a consent (the e-mail agreement): the badge, the timeline and the ledger's actor follow.
    row = page.locator('[data-agreement="email"]')
    row.locator("select").select_option("granted")
    row.locator("button", has_text="Set").click()
    page.wait_for_selector('[data-agreement="email"] .card-consent-state.is-granted')
    assert page.locator(".tl-entry .tl-title", has_text="Consent email: granted").count() == 1

    # Add a note.
    page.fill("#card-note-text", "Prefers calls after 5 pm.")
    page.click("button:has-text('Add note')")
    page.wait_for_selector(".tl-note .tl-body:has-text('Prefers calls after 5 pm.')")

    # Newest first: the note, then the consent, then the tag.
    titles = page.locator(".tl-entry .tl-title").all_inner_texts()[:3]
    assert titles == ["Note", "Consent email: granted", "Tag VIP added"]
    page.screenshot(path=screenshots / "card-1280-full.png", full_page=True)
    page.goto(page.url.split("#")[0])  # the top of the card, for the README
    page.screenshot(path=screenshots / "card-1280.png")
    page.emulate_media(color_scheme="dark")
    page.screenshot(path=screenshots / "card-1280-dark.png")
    page.emulate_media(color_scheme="light")

    from consents.models import ConsentRecord

    record = ConsentRecord.objects.filter(client_id=ola.pk, agreement__key="email").latest("seq")
    assert (record.actor, record.source) == ("user:mia@example.com", "admin")

    # Wide and narrow screens: side by side at 1920 px, stacked at 800 px.
    page.set_viewport_size({"width": 1920, "height": 1080})
    b = boxes(page)
    assert b["left"]["x"] < b["middle"]["x"] < b["right"]["x"]
    page.screenshot(path=screenshots / "card-1920.png")
    page.set_viewport_size({"width": 800, "height": 1000})
    b = boxes(page)
    assert b["left"]["y"] + b["left"]["height"] <= b["middle"]["y"] + 1
    assert b["middle"]["y"] + b["middle"]["height"] <= b["right"]["y"] + 1
    page.screenshot(path=screenshots / "card-800.png", full_page=True)


def test_marketer_cannot_open_api_keys_but_exports(page, live_server, marketer, ola):
    log_in(page, live_server, marketer)
    response = page.goto(f"{live_server.url}/admin/crm/apikey/")
    assert response.status == 403
    response = page.goto(f"{live_server.url}/admin/consents/agreement/")
    assert response.status == 403
    page.goto(f"{live_server.url}/admin/")
    assert page.locator("a", has_text="API keys").count() == 0
    page.goto(f"{live_server.url}/admin/profiles/profile/{ola.pk}/change/")
    assert page.locator("#card-merges").is_visible()
    assert page.get_by_role("button", name="Export as CSV").count() == 1  # marketers export
    assert Agreement.objects.filter(key="email").exists()
