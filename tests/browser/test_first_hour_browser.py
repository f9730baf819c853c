"""A new marketer's first hour in a real browser, at 1280 and 1920 px: consent controls that change nothing
untouched, a profile list that fits, search by part of an e-mail, tags near the top of the card, offline API docs."""

import uuid

import pytest

from consents.models import Agreement, ConsentRecord, ConsentState, ConsentStatus
from consents.services import consent_set
from profiles.services import ProfileInput, profile_upsert
from profiles.services.tags import tag_create, tags_add
from tests.browser.conftest import PASSWORD
from tests.profiles.test_admin_card import insert_events

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = [1280, 1920]


def make_profile(**fields):
    identifiers = {"uuid": str(uuid.uuid4())}
    for key in ("email", "customId", "phone"):
        if key in fields:
            identifiers[key] = fields.pop(key)
    return profile_upsert(
        data=ProfileInput(identifiers=identifiers, fields=fields), source="import", actor="tests"
    ).profile


@pytest.fixture
def natalia(marketer):
    profile = make_profile(
        email="natalia.kowalczyk74@example.com",
        customId="CRM-100074",
        phone="+48 600 700 801",
        first_name="Natalia",
        last_name="Kowalczyk-Wiśniewska",
        city="Bielsko-Biała",
        country_code="PL",
    )
    insert_events(profile, 30)
    tags_add(profiles=[profile], tags=[tag_create(name="vip"), tag_create(name="newsletter")], source="tests")
    return profile


def log_in(page, live_server, user):
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")


def card(page, live_server, profile):
    page.goto(f"{live_server.url}/admin/profiles/profile/{profile.pk}/change/")
    page.wait_for_selector("#profile-card")


def states(profile):
    return dict(ConsentState.objects.filter(profile=profile).values_list("agreement__key", "status"))


@pytest.mark.parametrize("width", WIDTHS)
def test_consent_controls_submitted_untouched_change_nothing(page, live_server, marketer, natalia, width):
    page.set_viewport_size({"width": width, "height": 1000})
    email = Agreement.objects.get(key="email")
    consent_set(profile=natalia, agreement=email, state=ConsentStatus.GRANTED, source="tests")
    consent_set(profile=natalia, agreement=Agreement.objects.get(key="sms"), state=ConsentStatus.DENIED, source="tests")
    before, records = states(natalia), ConsentRecord.objects.count()
    assert before == {"email": "granted", "sms": "denied"}
    log_in(page, live_server, marketer)
    card(page, live_server, natalia)

    rows = page.locator("#card-consents li[data-agreement]")
    keys = [rows.nth(i).get_attribute("data-agreement") for i in range(rows.count())]
    assert len(keys) >= 7
    for key in keys:
        row = page.locator(f'#card-consents li[data-agreement="{key}"]')
        if row.locator("select").count() == 0:
            continue
        # The selector shows the stored state, or the empty "choose" entry when there is none.
        assert row.locator("select").input_value() == before.get(key, "")
        row.locator("button", has_text="Set").click()
        page.wait_for_selector("#profile-card")
        assert page.locator(".messagelist .error").count() == 0

    assert states(natalia) == before
    assert ConsentRecord.objects.count() == records


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_the_api_docs_request_nothing_from_other_hosts(page, live_server, path):
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(f"{live_server.url}{path}")
    # Both pages render the operations from the local schema.
    # A locator, not a JavaScript predicate: the pages' Content-Security-Policy forbids eval.
    page.get_by_text("/v4/clients/by-email", exact=False).first.wait_for(timeout=30_000)
    page.wait_for_load_state("networkidle")
    foreign = [url for url in requested if not url.startswith((live_server.url, "data:", "blob:"))]
    assert requested and not foreign, foreign


@pytest.fixture
def crowd(natalia):
    """Profiles with long values, an anonymous visitor with activity, and enough rows for a full page."""
    for index in range(30):
        make_profile(
            email=f"a.very.long.local.part.for.testing.{index}@subdomain.example-company.com",
            customId=f"LOYALTY-CARD-{index:012d}",
            first_name="Maximiliane-Annegret",
            last_name=f"Wiśniewska-Kowalczyk-Długosz {index}",
            city="Ostrów Wielkopolski",
        )
    visitor = make_profile()
    insert_events(visitor, 3)
    return {"natalia": natalia, "visitor": visitor}


def fits(page) -> tuple[int, int]:
    return page.locator("#changelist .results").evaluate("(el) => [el.scrollWidth, el.clientWidth]")


@pytest.mark.parametrize("width", WIDTHS)
def test_the_profile_list_fits_with_the_sidebar_open(page, live_server, marketer, crowd, width, screenshots):
    page.set_viewport_size({"width": width, "height": 900})
    log_in(page, live_server, marketer)
    page.goto(f"{live_server.url}/admin/profiles/profile/")
    page.wait_for_selector("#result_list")
    page.wait_for_selector("#nav-sidebar", state="visible")
    assert page.locator("#changelist-filter").is_visible()
    scroll_width, client_width = fits(page)
    assert scroll_width <= client_width, (scroll_width, client_width)
    # Every column is on screen: the last one (last activity) ends inside the viewport.
    last = page.locator("#result_list thead th").last.bounding_box()
    assert last["x"] + last["width"] <= width

    # An anonymous row shows its uuid and its last activity; a long value is cut and whole in the tooltip.
    visitor = crowd["visitor"]
    row = page.locator("#result_list tbody tr", has=page.locator(f"text={visitor.uuid}"))
    assert row.count() == 1
    assert row.locator(".field-last_activity time").count() == 1
    cell = page.locator("#result_list .field-contact .cell-cut").filter(has_text="a.very.long").first
    assert cell.get_attribute("title").endswith("@subdomain.example-company.com")

    # The agreement filter: one control per agreement.
    agreements = Agreement.objects.filter(is_active=True).count()
    assert page.locator(".profile-agreement-filter select").count() == agreements
    assert page.locator('#changelist-filter a[href*="consent="]').count() == 0
    page.screenshot(path=screenshots / f"list-{width}.png")


def test_search_by_part_of_an_email_and_filter_by_agreement(page, live_server, marketer, crowd):
    natalia = crowd["natalia"]
    consent_set(profile=natalia, agreement=Agreement.objects.get(key="sms"), state=ConsentStatus.GRANTED, source="t")
    log_in(page, live_server, marketer)
    page.goto(f"{live_server.url}/admin/profiles/profile/")
    page.fill("#searchbar", "kowalczyk74")
    page.press("#searchbar", "Enter")
    page.wait_for_url("**q=kowalczyk74**")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1 and "natalia.kowalczyk74@example.com" in rows.first.inner_text()

    # Choosing a state applies at once (the search stays); "never decided" on SMS drops Natalia.
    page.goto(f"{live_server.url}/admin/profiles/profile/?q=example")
    page.locator('.profile-agreement-filter select[aria-label="SMS marketing"]').select_option("sms:none")
    page.wait_for_url("**consent=sms%3Anone**")
    assert "q=example" in page.url and "consent=email" not in page.url
    assert page.locator("#result_list tbody tr").count() >= 20
    assert "natalia.kowalczyk74@example.com" not in page.locator("#result_list").inner_text()
    page.locator('.profile-agreement-filter select[aria-label="SMS marketing"]').select_option("sms:granted")
    page.wait_for_url("**consent=sms%3Agranted**")
    assert page.locator("#result_list tbody tr").count() == 1
