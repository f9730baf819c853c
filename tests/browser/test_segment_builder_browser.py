"""A marketer builds a two-condition segment in the builder without writing JSON, sees the live count, saves it,
opens a member's card and finds the segment in the right column."""

import pytest
from playwright.sync_api import expect

from profiles.models import Tag
from profiles.services import ProfileInput, profile_upsert
from profiles.services.tags import tags_add
from segments.models import Segment
from tests.browser.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def person(email, city):
    return profile_upsert(
        data=ProfileInput(identifiers={"email": email}, fields={"city": city, "first_name": email.split("@")[0]}),
        source="tests",
        actor="tests",
    ).profile


def test_build_count_save_and_find_on_the_card(page, live_server, marketer, immediate_tasks, screenshots):
    vip = Tag.objects.create(name="VIP")
    ola, bob, cid = (
        person("ola@example.com", "Kraków"),
        person("bob@example.com", "Kraków"),
        person("cid@example.com", "Gdańsk"),
    )
    tags_add(profiles=[ola, cid], tags=[vip], source="tests")

    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", marketer.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")

    page.goto(f"{live_server.url}/admin/segments/segment/add/")
    page.fill("#id_name", "Kraków VIPs")
    first = page.locator(".sb-condition").nth(0)
    first.locator(".sb-field").select_option("city")
    page.locator(".sb-condition").nth(0).locator(".sb-op").select_option("eq")
    page.locator(".sb-condition").nth(0).locator(".sb-value").fill("kraków")
    expect(page.locator("#sb-count")).to_have_attribute("data-count", "2")  # the live count, one condition
    page.locator(".sb-add-condition").first.click()
    page.locator(".sb-condition").nth(1).locator(".sb-kind").select_option("tag")
    page.locator(".sb-condition").nth(1).locator(".sb-tag").select_option(label="VIP")
    expect(page.locator("#sb-count")).to_have_attribute("data-count", "1")
    expect(page.locator("#sb-preview a")).to_have_text([str(ola)])
    page.screenshot(path=str(screenshots / "segment-builder.png"), full_page=True)
    page.click("input[name=_save]")
    page.wait_for_url(f"{live_server.url}/admin/segments/segment/")

    segment = Segment.objects.get(name="Kraków VIPs")
    assert segment.tree == {"all": [{"field": "city", "op": "eq", "value": "kraków"}, {"tagId": vip.pk}]}
    expect(page.locator("#result_list")).to_contain_text("Kraków VIPs")

    page.goto(f"{live_server.url}/admin/profiles/profile/{ola.pk}/change/")
    expect(page.locator('[data-column="right"] #card-segments')).to_contain_text("Kraków VIPs")
    page.goto(f"{live_server.url}/admin/profiles/profile/{bob.pk}/change/")
    expect(page.locator('[data-column="right"] #card-segments')).to_contain_text("In no segment.")
