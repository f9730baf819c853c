"""The website tracker in a real browser: the demo page's visits and sign-ups become profiles, two people on one
browser stay two profiles, the consent gate holds, and Admin staff manage sites in the admin."""

import importlib

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, User

from profiles.models import Event, Profile
from profiles.selectors import identifier_owners
from tracker.models import Site

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

roles = importlib.import_module("crm.migrations.0003_roles")
PASSWORD = "correct horse battery"
COOKIE = "crm_uuid"


def is_collect(kind):
    def match(response):
        request = response.request
        return (
            request.url.endswith("/t/collect") and request.method == "POST" and request.post_data_json["type"] == kind
        )

    return match


def browser_uuid(page) -> str | None:
    return next((c["value"] for c in page.context.cookies() if c["name"] == COOKIE), None)


def owner(uuid_value) -> Profile:
    return Profile.objects.get(pk=identifier_owners(pairs=[("uuid", uuid_value)])[("uuid", uuid_value)])


def actions(profile) -> list[str]:
    return sorted(Event.objects.filter(profile=profile, is_system=False).values_list("action", flat=True))


def sign_up(page, email):
    page.fill("input[data-crm-field=email]", email)
    with page.expect_response(is_collect("form.submit")) as sent:
        page.click("button[type=submit]")
    assert sent.value.status == 204, sent.value.text()
    page.wait_for_selector(f"#demo-status:has-text('{email}')")


def test_demo_page_visit_then_two_people_sign_up_on_one_browser(page, live_server, screenshots):
    Site.objects.create(name="Demo shop", allowed_origins=[live_server.url])

    # A visit: an anonymous profile with a page.visit for the cookie's uuid.
    with page.expect_response(is_collect("page.visit")) as sent:
        page.goto(f"{live_server.url}/tracker/demo/")
    assert sent.value.status == 204, sent.value.text()
    cookie = next(c for c in page.context.cookies() if c["name"] == COOKIE)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert page.evaluate("() => document.cookie").find(COOKIE) == -1  # the script cannot read it
    first_uuid = cookie["value"]
    visitor = owner(first_uuid)
    assert visitor.anonymous and actions(visitor) == ["page.visit"]
    page.screenshot(path=screenshots / "tracker-demo.png")

    # Signing up recognizes that same profile, with the form.submit on its timeline.
    sign_up(page, "ann.visitor@example.com")
    assert browser_uuid(page) == first_uuid
    ann = Profile.objects.get(pk=visitor.pk)
    assert ann.email == "ann.visitor@example.com" and not ann.anonymous
    assert actions(ann) == ["form.submit", "page.visit"]

    # Another person on the same browser: a new uuid in a new cookie, a new profile; Ann's is left alone.
    sign_up(page, "bob.visitor@example.com")
    second_uuid = browser_uuid(page)
    assert second_uuid and second_uuid != first_uuid
    bob = owner(second_uuid)
    assert bob.pk != ann.pk and bob.email == "bob.visitor@example.com" and actions(bob) == ["form.submit"]
    ann_after = Profile.objects.get(pk=ann.pk)
    assert ann_after.email == "ann.visitor@example.com" and owner(first_uuid).pk == ann.pk
    assert actions(ann_after) == ["form.submit", "page.visit"]

    # The next page view belongs to Bob.
    with page.expect_response(is_collect("page.visit")):
        page.reload()
    assert actions(owner(second_uuid)) == ["form.submit", "page.visit"]


def test_nothing_is_sent_before_consent_and_withdrawing_clears_the_cookie(page, live_server):
    site = Site.objects.create(name="Careful shop", allowed_origins=[live_server.url], consent_required=True)
    sent = []
    page.on("request", lambda request: sent.append(request) if request.url.endswith("/t/collect") else None)

    page.goto(f"{live_server.url}/tracker/demo/?site={site.key}")
    page.wait_for_load_state("load")
    page.wait_for_timeout(500)
    assert page.locator("#demo-consent-note").is_visible()
    # Signing up without consent sends nothing either.
    page.fill("input[data-crm-field=email]", "quiet@example.com")
    page.click("button[type=submit]")
    page.wait_for_selector("#demo-status:has-text('quiet@example.com')")
    page.wait_for_timeout(500)
    assert sent == [] and browser_uuid(page) is None
    assert not Profile.objects.exists()

    # Consent given: the visit goes out, the cookie is set; the next page remembers the decision.
    with page.expect_response(is_collect("page.visit")) as visit:
        page.click("#demo-consent-yes")
    assert visit.value.status == 204
    assert visit.value.request.post_data_json["consent"] is True
    uuid_value = browser_uuid(page)
    assert actions(owner(uuid_value)) == ["page.visit"]
    with page.expect_response(is_collect("page.visit")):
        page.reload()
    assert actions(owner(uuid_value)) == ["page.visit", "page.visit"]

    # Withdrawn: the server expires the cookie, and nothing more is sent.
    with page.expect_response(is_collect("consent.withdraw")) as withdraw:
        page.click("#demo-consent-no")
    assert withdraw.value.status == 204
    assert browser_uuid(page) is None
    before = len(sent)
    page.reload()
    page.wait_for_load_state("load")
    page.fill("input[data-crm-field=email]", "quiet@example.com")
    page.click("button[type=submit]")
    page.wait_for_selector("#demo-status:has-text('quiet@example.com')")
    page.wait_for_timeout(500)
    assert len(sent) == before
    assert Event.objects.filter(is_system=False).count() == 2


def log_in(page, live_server, user):
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")


def test_admin_staff_add_a_site_and_marketers_do_not_see_sites(page, live_server, screenshots):
    roles.create_roles(apps, None)
    admin_user = User.objects.create_user("ada@example.com", password=PASSWORD, is_staff=True)
    admin_user.groups.add(Group.objects.get(name="Admin staff"))
    marketer = User.objects.create_user("mia@example.com", password=PASSWORD, is_staff=True)
    marketer.groups.add(Group.objects.get(name="Marketers"))

    log_in(page, live_server, admin_user)
    page.get_by_role("link", name="Sites").first.click()
    page.get_by_role("link", name="Add site").click()
    page.fill("#id_name", "Sports shop")
    page.fill("#id_allowed_origins", f"https://Shop.example:443/\n{live_server.url}")
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist")
    site = Site.objects.get(name="Sports shop")
    assert site.allowed_origins == ["https://shop.example", live_server.url]
    assert page.locator(".tracker-snippet").inner_text() == (
        f'<script async src="http://localhost:8000/tracker.js" data-site-key="{site.key}"></script>'
    )
    page.screenshot(path=screenshots / "tracker-site-admin.png")

    # An origin with a path is refused, naming it.
    page.fill("#id_allowed_origins", "https://shop.example/basket")
    page.click("input[name=_continue]")
    page.wait_for_selector(".errorlist")
    assert "not an origin" in page.locator(".errorlist").first.inner_text()

    # The demo link opens the demo page for this site, which sends its visit.
    page.goto(f"{live_server.url}/admin/tracker/site/{site.pk}/change/")
    with page.expect_response(is_collect("page.visit")) as sent:
        page.click("#tracker-demo-link")
    assert sent.value.status == 204

    page.context.clear_cookies()
    log_in(page, live_server, marketer)
    assert page.get_by_role("link", name="Sites").count() == 0
    response = page.goto(f"{live_server.url}/admin/tracker/site/")
    assert response.status == 403


def test_a_page_on_another_origin_sends_through_cors(page, live_server):
    """The shop's page on its own origin loads the script from the platform's host: the preflight and the POST pass
    CORS for the site's origin (a page on an origin the site does not list gets nothing through)."""
    # Other origins on the loopback address (Chromium keeps pages on public addresses from reaching it): the
    # pages are made up by the test, the script and the endpoint are the live server's.
    shop = live_server.url.replace("localhost", "127.0.0.1")
    evil = live_server.url.replace("localhost", "127.0.0.2")
    site = Site.objects.create(name="Shop", allowed_origins=[shop])
    html = (
        "<!doctype html><title>Shop</title>"
        f'<script async src="{live_server.url}/tracker.js" data-site-key="{site.key}"></script>'
    )
    page.route(f"{shop}/**", lambda route: route.fulfill(status=200, content_type="text/html", body=html))
    page.route(f"{evil}/**", lambda route: route.fulfill(status=200, content_type="text/html", body=html))

    page.context.grant_permissions(["local-network-access"])  # Chromium asks before a page reaches the loopback
    with page.expect_response(is_collect("page.visit")) as sent:
        page.goto(f"{shop}/shoes")
    assert sent.value.status == 204
    assert sent.value.headers["access-control-allow-origin"] == shop
    event = Event.objects.get(action="page.visit")
    assert event.params["url"] == f"{shop}/shoes"

    failed = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.goto(f"{evil}/")
    page.wait_for_load_state("load")
    page.wait_for_timeout(500)
    assert Event.objects.filter(action="page.visit").count() == 1
    assert any(url.endswith("/t/collect") for url in failed), failed
