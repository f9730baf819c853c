"""The demo data's showcase card in a real browser: every column has content, tags and consents near the top, the
left column no taller than the others by more than a screen, readable in dark mode.

``make screenshots`` runs this module with ``SCREENSHOTS_DIR=docs`` (and the default 1,000 demo profiles) to write
the README's ``docs/card.png``; otherwise the screenshots go to ``.artifacts/screenshots/``.
"""

import importlib
import os
from io import StringIO
from pathlib import Path

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.core.management import call_command

from profiles.models import Profile
from tests.browser.conftest import SCREENSHOTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

roles = importlib.import_module("crm.migrations.0003_roles")
default_agreements = importlib.import_module("consents.migrations.0002_default_agreements")
PASSWORD = "correct horse battery"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def showcase(db):
    default_agreements.create_defaults(apps, None)
    roles.create_roles(apps, None)
    call_command("load_demo_data", "--profiles", os.environ.get("SCREENSHOT_PROFILES", "60"), stdout=StringIO())
    return Profile.objects.order_by("pk").first()


@pytest.fixture
def admin_user(db):
    return User.objects.create_superuser("admin", "admin@example.com", PASSWORD)


def log_in(page, live_server):
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")


def column_boxes(page):
    return {c: page.locator(f'[data-column="{c}"]').bounding_box() for c in ("left", "middle", "right")}


@pytest.mark.parametrize("width,height", [(1280, 800), (1600, 1000), (1920, 1080)])
def test_the_showcase_card_is_full_and_its_columns_balanced(page, live_server, showcase, admin_user, width, height):
    page.set_viewport_size({"width": width, "height": height})
    log_in(page, live_server)
    page.goto(f"{live_server.url}/admin/profiles/profile/{showcase.pk}/change/")
    page.wait_for_selector("#profile-card")

    # Every column has content: timeline entries, activity figures and orders, tags and consents.
    assert page.locator(".tl-entry").count() >= 10
    assert page.locator("#card-activity .card-last strong").inner_text() != "never"
    assert page.locator("#card-commerce .card-empty").count() == 0
    assert page.locator("#card-merges .card-empty").count() == 0
    assert page.locator("#card-tags .card-tag").count() >= 2
    assert page.locator("#card-consents .card-consent-state.is-granted").count() >= 1
    assert page.locator("#card-devices .card-empty").count() == 0
    # The header's "last event" says what the activity panel says.
    last = page.locator("#card-activity .card-last strong").inner_text()
    assert f"last event {last}" in page.locator(".card-sub").inner_text()

    # Tags and consents within the first screen and a half; the left column at most a screen taller than the others.
    assert page.locator("#card-tags").bounding_box()["y"] < 1.5 * height
    assert page.locator("#card-consents").bounding_box()["y"] < 1.5 * height
    boxes = column_boxes(page)
    others = max(boxes["middle"]["height"], boxes["right"]["height"])
    assert boxes["left"]["height"] - others <= height, boxes

    # No generic controls above the card: no "Save and add another", no action bar, no Save row at the top.
    assert page.locator("input[name=_addanother]").count() == 0
    assert page.locator("#profile_form .actions").count() == 0
    assert page.locator(".submit-row").count() == 1
    assert page.locator(".submit-row").bounding_box()["y"] > page.locator("#profile-card").bounding_box()["y"]

    target = Path(os.environ.get("SCREENSHOTS_DIR", SCREENSHOTS))
    if not target.is_absolute():
        target = ROOT / target
    target.mkdir(parents=True, exist_ok=True)
    if (width, height) == (1600, 1000):
        page.screenshot(path=target / "card.png")
    page.screenshot(path=SCREENSHOTS / f"demo-card-{width}-full.png", full_page=True)
    page.emulate_media(color_scheme="dark")
    page.screenshot(path=SCREENSHOTS / f"demo-card-{width}-dark.png")


def test_buttons_are_readable_in_dark_mode(page, live_server, showcase, admin_user):
    """A guard: the list's Run button and the card's buttons keep a text contrast of at least 4.5 in dark mode."""
    page.emulate_media(color_scheme="dark")
    page.set_viewport_size({"width": 1600, "height": 1000})
    log_in(page, live_server)
    page.goto(f"{live_server.url}/admin/profiles/profile/{showcase.pk}/change/")
    page.wait_for_selector("#profile-card")
    buttons = ["#card-tags .card-button", "#card-consents .card-button", ".submit-row input[name=_save]"]
    page.goto(f"{live_server.url}/admin/profiles/profile/")
    buttons_list = ["#changelist-form .actions button"]
    for selector in buttons_list:
        assert contrast(page, selector) >= 4.5, selector
    page.goto(f"{live_server.url}/admin/profiles/profile/{showcase.pk}/change/")
    for selector in buttons:
        assert contrast(page, selector) >= 4.5, selector


CONTRAST_JS = """(el) => {
    const parse = (c) => (c.match(/[\\d.]+/g) || []).slice(0, 3).map(Number);
    const lum = (rgb) => {
        const [r, g, b] = rgb.map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
        return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    let node = el, bg = "rgba(0, 0, 0, 0)";
    while (node && node.nodeType === 1) {
        const c = getComputedStyle(node).backgroundColor;
        if (!c.startsWith("rgba(0, 0, 0, 0)") && c !== "transparent") { bg = c; break; }
        node = node.parentElement;
    }
    const a = lum(parse(getComputedStyle(el).color)), b = lum(parse(bg));
    return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}"""


def contrast(page, selector) -> float:
    return page.locator(selector).first.evaluate(CONTRAST_JS)
