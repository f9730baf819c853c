"""The card's custom attributes in a real browser: the set values shown first and editable, the unset ones behind
"Add an attribute" with its search, saving through the admin's form, and no box saying ``null``."""

import uuid

import pytest

from profiles.models import Profile
from profiles.services import ProfileInput, attribute_definition_create, profile_upsert
from tests.browser.test_card_browser import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DEFINITIONS = {
    "loyaltyPoints": "number",
    "favouriteCategory": "string",
    "badges": "list",
    "wishlist": "list",
    "newsletterVip": "boolean",
    "firstOrderDate": "date",
    "lastSeenAt": "datetime",
    **{f"campaign{n:02d}": "string" for n in range(1, 24)},
}  # thirty definitions


@pytest.fixture
def kasia(db):
    for name, type_ in DEFINITIONS.items():
        description = "the badges a customer earned" if name == "badges" else ""
        attribute_definition_create(name=name, type=type_, description=description)
    return profile_upsert(
        data=ProfileInput(
            identifiers={"email": "kasia@example.com", "uuid": str(uuid.uuid4())},
            fields={"first_name": "Kasia"},
            attributes={"loyaltyPoints": 120, "favouriteCategory": "garden"},
        ),
        source="import",
        actor="tests",
    ).profile


def shown_rows(page):
    return page.locator("[data-attribute-list] [data-attribute]")


def visible_inputs(page):
    return page.locator(
        "#card-attributes :is(input:not([type=hidden]), select, textarea):visible:not(#card-attribute-search)"
    )


def no_null(page):
    """No box, hidden or shown, and no text in the panel says null."""
    panel = page.locator("#card-attributes")
    assert "null" not in panel.inner_text()
    values = panel.locator("input, textarea").evaluate_all("els => els.map(e => e.value)")
    assert "null" not in values, values


def test_the_card_shows_set_attributes_and_adds_one_by_search(page, live_server, marketer, kasia, screenshots):
    log_in(page, live_server, marketer)
    page.goto(f"{live_server.url}/admin/profiles/profile/{kasia.pk}/change/")
    page.wait_for_selector("#card-attributes")

    # Two values set: two rows, each its typed input with the value; nothing else to fill in sight.
    assert [row.get_attribute("data-attribute") for row in shown_rows(page).all()] == [
        f"attr_{pk}" for pk in sorted_pks("favouriteCategory", "loyaltyPoints")
    ]
    assert page.get_by_label("loyaltyPoints", exact=True).input_value() == "120"
    assert page.get_by_label("favouriteCategory", exact=True).input_value() == "garden"
    assert visible_inputs(page).count() == 2
    assert page.locator("#card-attribute-picker").is_hidden()
    no_null(page)
    page.locator("#card-attributes").screenshot(path=screenshots / "card-attributes.png")

    # "Add an attribute": a search over the 28 unset ones; "badg" leaves badges alone; Enter takes it.
    page.get_by_role("button", name="Add an attribute").click()
    search = page.locator("#card-attribute-search")
    assert search.is_visible() and search.evaluate("e => e === document.activeElement")
    assert page.locator("[data-attribute-choice]:visible").count() == 28
    search.fill("BADG")
    assert [text.split() for text in page.locator("[data-attribute-choice]:visible").all_inner_texts()] == [
        ["badges", "list"]
    ]
    page.locator("#card-attributes").screenshot(path=screenshots / "card-attributes-search.png")
    search.press("Enter")
    assert page.locator("#card-attribute-picker").is_hidden()
    badges = page.get_by_label("badges", exact=True)
    assert badges.is_visible() and badges.input_value() == ""  # an unset list is an empty box
    assert badges.evaluate("e => e === document.activeElement")
    assert shown_rows(page).count() == 3
    badges.fill('["gold", "silver"]')

    # A second one by a click on the choice; nothing matches a name no attribute has.
    page.get_by_role("button", name="Add an attribute").click()
    search.fill("no such attribute")
    assert page.locator("[data-attribute-choice]:visible").count() == 0
    assert page.locator("[data-attribute-nomatch]").is_visible()
    search.fill("vip")
    page.locator("[data-attribute-choice]:visible").click()
    page.get_by_label("newsletterVip", exact=True).select_option("true")
    # The picker no longer offers what was added.
    page.get_by_role("button", name="Add an attribute").click()
    search.fill("")
    assert page.locator("[data-attribute-choice]:visible").count() == 26
    search.press("Escape")
    assert page.locator("#card-attribute-picker").is_hidden()

    # Edit a set value, clear another, and save: the card comes back with what was saved.
    page.get_by_label("loyaltyPoints", exact=True).fill("150")
    page.get_by_role("button", name="Clear favouriteCategory").click()
    assert page.get_by_label("favouriteCategory", exact=True).input_value() == ""
    no_null(page)
    page.locator("input[name=_save]").click()
    page.wait_for_selector(".messagelist .success")

    kasia = Profile.objects.get(pk=kasia.pk)
    assert kasia.attributes == {"loyaltyPoints": 150, "badges": ["gold", "silver"], "newsletterVip": True}
    assert [row.get_attribute("data-attribute") for row in shown_rows(page).all()] == [
        f"attr_{pk}" for pk in sorted_pks("badges", "loyaltyPoints", "newsletterVip")
    ]
    assert page.get_by_label("badges", exact=True).input_value() == '["gold", "silver"]'
    assert visible_inputs(page).count() == 3
    no_null(page)
    page.get_by_role("button", name="Add an attribute").click()
    assert page.locator("[data-attribute-choice]:visible").count() == 27  # favouriteCategory is unset again
    page.locator("#card-attributes").screenshot(path=screenshots / "card-attributes-saved.png")


def test_a_bad_value_in_an_added_attribute_comes_back_shown_with_its_error(page, live_server, marketer, kasia):
    log_in(page, live_server, marketer)
    page.goto(f"{live_server.url}/admin/profiles/profile/{kasia.pk}/change/")
    page.get_by_role("button", name="Add an attribute").click()
    page.locator("#card-attribute-search").fill("wishlist")
    page.locator("#card-attribute-search").press("Enter")
    page.get_by_label("wishlist", exact=True).fill('{"not": "a list"}')
    page.locator("input[name=_save]").click()
    page.wait_for_selector("#card-attributes .card-attribute.errors")
    row = page.locator("[data-attribute-list] .card-attribute.errors")
    assert "Enter a JSON array" in row.inner_text()
    assert page.get_by_label("wishlist", exact=True).input_value() == '{"not": "a list"}'
    assert Profile.objects.get(pk=kasia.pk).attributes == {"loyaltyPoints": 120, "favouriteCategory": "garden"}


def sorted_pks(*names):
    from profiles.models import AttributeDefinition

    return list(AttributeDefinition.objects.filter(name__in=names).order_by("name").values_list("pk", flat=True))
