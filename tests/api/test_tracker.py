"""The collect endpoint: what it records, the uuid cookie, CORS, the consent gate and bad input."""

import gzip
import json
import uuid

import pytest
from django.test import Client

from profiles.models import AttributeDefinition, Event, Profile, Tag
from profiles.selectors import identifier_owners
from tracker.models import Site

ORIGIN = "https://shop.example"
COOKIE = "crm_uuid"


@pytest.fixture
def site(db):
    return Site.objects.create(name="Shop", allowed_origins=[ORIGIN, "https://www.shop.example"])


@pytest.fixture
def browser(db):
    """A browser on the shop's page: it keeps the cookies the endpoint sets, and sends its Origin."""
    return Client(HTTP_ORIGIN=ORIGIN, HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 Safari/537.36")


def collect(client, body, **extra):
    payload = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post("/t/collect", payload, content_type="application/json", **extra)


def visit(client, site, url="https://shop.example/", **more):
    return collect(client, {"siteKey": site.key, "type": "page.visit", "url": url, "title": "Shop", **more})


def submit(client, site, **fields):
    body = {"siteKey": site.key, "type": "form.submit", "url": "https://shop.example/signup", "form": "signup"}
    return collect(client, {**body, "fields": fields})


def owner_of(value):
    return Profile.objects.get(pk=identifier_owners(pairs=[("uuid", value)])[("uuid", value)])


def test_a_visit_makes_an_anonymous_profile_and_sets_the_uuid_cookie(site, browser):
    response = visit(browser, site, referrer="https://search.example/?q=shoes")
    assert response.status_code == 204, response.content
    cookie = response.cookies[COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/"
    assert int(cookie["max-age"]) >= 365 * 24 * 3600
    assert not cookie["secure"]  # plain HTTP here; see the HTTPS test
    profile = owner_of(cookie.value)
    assert profile.anonymous
    event = Event.objects.get(profile=profile, action="page.visit")
    assert event.params["url"] == "https://shop.example/" and event.params["title"] == "Shop"
    assert event.params["referrer"] == "https://search.example/?q=shoes"
    assert "Chrome" in event.params["userAgent"]
    assert event.source == "tracker" and event.actor == f"site:{site.key}"
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    assert response["Access-Control-Allow-Credentials"] == "true"
    assert "Origin" in response["Vary"]

    # The next visit keeps the browser's uuid and its profile.
    again = visit(browser, site, url="https://shop.example/shoes")
    assert again.cookies[COOKIE].value == cookie.value
    assert Event.objects.filter(profile=profile, action="page.visit").count() == 2
    assert Profile.objects.count() == 1


def test_the_cookie_is_secure_over_https(site, browser):
    body = {"siteKey": site.key, "type": "page.visit", "url": "https://shop.example/"}
    response = collect(browser, body, secure=True)
    assert response.status_code == 204
    assert response.cookies[COOKIE]["secure"]


def test_a_form_identifies_the_browser_and_another_email_gets_a_new_uuid(site, browser):
    first_uuid = visit(browser, site).cookies[COOKIE].value
    anonymous = owner_of(first_uuid)

    response = submit(browser, site, email="Ann@Example.com", firstName="Ann")
    assert response.status_code == 204, response.content
    assert response.cookies[COOKIE].value == first_uuid
    ann = Profile.objects.get(pk=anonymous.pk)  # the same profile, now recognized
    assert ann.email == "ann@example.com" and not ann.anonymous and ann.first_name == "Ann"
    submitted = Event.objects.get(profile=ann, action="form.submit")
    assert submitted.params["email"] == "Ann@Example.com" and submitted.params["form"] == "signup"

    # Someone else on the same browser: a new uuid, a new profile; Ann's stays as it was.
    response = submit(browser, site, email="bob@example.com")
    second_uuid = response.cookies[COOKIE].value
    assert second_uuid != first_uuid
    bob = owner_of(second_uuid)
    assert bob.pk != ann.pk and bob.email == "bob@example.com"
    assert owner_of(first_uuid).pk == ann.pk
    ann_after = Profile.objects.get(pk=ann.pk)
    assert ann_after.email == "ann@example.com" and ann_after.first_name == "Ann"
    assert Event.objects.filter(profile=ann, action__in=["page.visit", "form.submit"]).count() == 2
    assert Event.objects.filter(profile=bob, action="form.submit").count() == 1

    # The browser's next visit goes to Bob; the same e-mail again changes nothing.
    visit(browser, site)
    assert Event.objects.filter(profile=bob, action="page.visit").count() == 1
    assert submit(browser, site, email="bob@example.com").cookies[COOKIE].value == second_uuid


def test_a_form_with_a_known_email_joins_that_profile(site, browser, make_profile):
    known = make_profile(email="cat@example.com")
    visit(browser, site)
    response = submit(browser, site, email="cat@example.com")
    assert owner_of(response.cookies[COOKIE].value).pk == known.pk
    assert Event.objects.filter(profile=known, action__in=["page.visit", "form.submit"]).count() == 2


def test_a_form_writes_phone_attributes_and_existing_tags(site, browser):
    AttributeDefinition.objects.create(name="favouriteSport", key="favouritesport", type="string")
    Tag.objects.create(name="Newsletter")
    response = submit(
        browser,
        site,
        email="dan@example.com",
        lastName="Dane",
        phone="+48 600 100 200",
        attributes={"favouriteSport": "running"},
        tags=["newsletter"],
    )
    assert response.status_code == 204, response.content
    dan = Profile.objects.get(email="dan@example.com")
    assert dan.last_name == "Dane" and dan.phone == "+48600100200"
    assert dan.attributes == {"favouriteSport": "running"}
    assert list(dan.tags.values_list("name", flat=True)) == ["Newsletter"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"email": "x@example.com", "attributes": {"inventedHere": "1"}}, "fields.attributes.inventedHere"),
        ({"email": "x@example.com", "tags": ["no-such-tag"]}, "fields.tags"),
        ({"email": "not an e-mail"}, "fields.email"),
        ({"email": "x@example.com", "phone": "12"}, "fields.phone"),
        ({"email": "x@example.com", "middleName": "X"}, "fields.middleName"),
        ({"email": 12}, "fields.email"),
    ],
)
def test_a_form_refuses_what_it_may_not_write_and_writes_nothing(site, browser, fields, field):
    response = submit(browser, site, **fields)
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 400 and body["field"] == field, body
    assert not Profile.objects.exists() and not Event.objects.exists()
    assert COOKIE not in response.cookies


def test_unknown_or_inactive_site_key_is_refused(site, browser):
    response = collect(browser, {"siteKey": "nope", "type": "page.visit", "url": "https://shop.example/"})
    assert response.status_code == 403
    assert response.json()["code"] == "site.unknown" and response.json()["field"] == "siteKey"
    Site.objects.filter(pk=site.pk).update(active=False)
    assert visit(browser, site).status_code == 403
    assert not Profile.objects.exists()


@pytest.mark.parametrize("origin", ["https://evil.example", "http://shop.example", "https://shop.example.evil", None])
def test_a_foreign_or_missing_origin_is_refused_without_cors_headers(site, origin):
    client = Client(**({"HTTP_ORIGIN": origin} if origin else {}))
    response = visit(client, site)
    assert response.status_code == 403
    assert response.json()["code"] == "site.origin_forbidden"
    assert "Access-Control-Allow-Origin" not in response
    assert COOKIE not in response.cookies
    assert not Profile.objects.exists()


def test_another_allowed_origin_of_the_site_works(site):
    response = visit(Client(HTTP_ORIGIN="https://www.shop.example"), site)
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == "https://www.shop.example"


def test_preflight_answers_only_the_sites_origins(site):
    response = Client().options(
        "/t/collect",
        HTTP_ORIGIN=ORIGIN,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type",
    )
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    assert response["Access-Control-Allow-Credentials"] == "true"
    assert "POST" in response["Access-Control-Allow-Methods"]
    assert "content-type" in response["Access-Control-Allow-Headers"].lower()

    foreign = Client().options(
        "/t/collect", HTTP_ORIGIN="https://evil.example", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST"
    )
    assert foreign.status_code == 403 and "Access-Control-Allow-Origin" not in foreign


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ("{not json", 400, "malformed_body"),
        ('{"siteKey": "a", "siteKey": "b", "type": "page.visit"}', 400, "body.duplicate_key"),
        ("[1, 2]", 400, None),
        ('{"type": "page.visit", "url": "https://shop.example/"}', 400, "field.required"),
        ('{"siteKey": "K", "type": "page.jump", "url": "https://shop.example/"}', 400, "field.choice"),
        (
            '{"siteKey": "K", "type": "page.visit", "url": "https://shop.example/", "title": "a\\u0000b"}',
            400,
            "field.invalid_text",
        ),
        ('{"siteKey": "K", "type": "page.visit", "url": "https://shop.example/", "extra": 1}', 400, "field.unknown"),
        ('{"siteKey": "K", "type": "page.visit", "url": "javascript:alert(1)"}', 400, "field.url"),
        ('{"siteKey": "K", "type": "page.visit"}', 400, "field.required"),
        ('{"siteKey": "K", "type": "page.visit", "url": NaN}', 400, None),
    ],
)
def test_malformed_payloads_get_a_problem_naming_the_field(site, browser, body, status, code):
    response = collect(browser, body.replace('"K"', json.dumps(site.key)))
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status and problem["instance"] == "/t/collect"
    if code:
        assert problem["code"] == code, problem
    assert not Profile.objects.exists()


def test_an_oversized_body_is_refused_before_it_is_read(site, browser, settings):
    settings.TRACKER_MAX_BODY_BYTES = 2048
    response = visit(browser, site, title="x" * 3000)
    assert response.status_code == 413
    assert response["Content-Type"] == "application/problem+json"
    assert not Profile.objects.exists()


def test_a_long_value_is_refused_naming_it(site, browser):
    response = visit(browser, site, url="https://shop.example/" + "a" * 3000)
    assert response.status_code == 400 and response.json()["field"] == "url"


def test_a_junk_cookie_is_replaced(site, browser):
    browser.cookies[COOKIE] = "undefined"
    response = visit(browser, site)
    assert response.status_code == 204
    assert uuid.UUID(response.cookies[COOKIE].value)


def test_rate_limited_per_ip_with_its_own_counter(site, browser, settings):
    settings.TRACKER_RATE_LIMIT = "2/min"
    assert visit(browser, site).status_code == 204
    assert visit(browser, site).status_code == 204
    refused = visit(browser, site)
    assert refused.status_code == 429 and refused["Retry-After"]
    assert refused["Content-Type"] == "application/problem+json"
    assert refused["RateLimit-Policy"].startswith('"tracker";q=2;')


# --- the consent gate ------------------------------------------------------------------------------


@pytest.fixture
def consent_site(db):
    return Site.objects.create(name="Careful shop", allowed_origins=[ORIGIN], consent_required=True)


def test_a_site_that_waits_for_consent_refuses_what_comes_without_it(consent_site, browser):
    response = visit(browser, consent_site)
    assert response.status_code == 403 and response.json()["code"] == "tracking.consent_required"
    assert COOKIE not in response.cookies
    assert submit(browser, consent_site, email="eve@example.com").status_code == 403
    assert not Profile.objects.exists() and not Event.objects.exists()
    assert visit(browser, consent_site, consent=True).status_code == 204
    assert Event.objects.filter(action="page.visit").count() == 1


def test_withdrawing_consent_expires_the_cookie_and_records_nothing(site, browser):
    uuid_value = visit(browser, site).cookies[COOKIE].value
    events = Event.objects.count()
    response = collect(browser, {"siteKey": site.key, "type": "consent.withdraw"})
    assert response.status_code == 204
    cookie = response.cookies[COOKIE]
    assert cookie.value == "" and int(cookie["max-age"]) == 0 and cookie["samesite"] == "Lax"
    assert Event.objects.count() == events
    # The browser comes back without a cookie: a new uuid, not the old profile.
    assert COOKIE not in browser.cookies or not browser.cookies[COOKIE].value
    assert visit(browser, site).cookies[COOKIE].value != uuid_value


# --- the script ----------------------------------------------------------------------------------------


def test_the_script_is_small_cacheable_and_revalidated(client):
    response = client.get("/tracker.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert "public" in response["Cache-Control"] and "max-age=" in response["Cache-Control"]
    content = response.content
    assert len(gzip.compress(content, 9)) < 5 * 1024, len(gzip.compress(content, 9))
    assert b"import " not in content and b"require(" not in content  # no dependencies
    again = client.get("/tracker.js", HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304
    zipped = client.get("/tracker.js", HTTP_ACCEPT_ENCODING="gzip")
    assert zipped["Content-Encoding"] == "gzip" and len(zipped.content) < 5 * 1024


def test_a_nul_in_a_form_field_is_refused_naming_it(site, browser):
    body = json.dumps({"siteKey": site.key, "type": "form.submit", "url": "https://shop.example/", "form": "f"})
    body = body[:-1] + ', "fields": {"email": "ann\\u0000@example.com"}}'
    response = collect(browser, body)
    assert response.status_code == 400
    assert response.json()["field"] == "fields.email" and response.json()["code"] == "field.invalid_text"
    assert not Profile.objects.exists()


def test_other_methods_and_paths_answer_as_problems(browser):
    response = browser.get("/t/collect")
    assert response.status_code == 405 and response["Content-Type"] == "application/problem+json"
    missing = browser.get("/t/nothing-here")
    assert missing.status_code == 404 and missing["Content-Type"] == "application/problem+json"
    assert missing.json()["instance"] == "/t/nothing-here"


def test_a_form_whose_phone_belongs_to_someone_else_is_a_conflict_and_writes_nothing(site, browser, make_profile):
    make_profile(email="owner@example.com", phone="+48 600 100 200")
    visit(browser, site)
    events = Event.objects.count()
    response = submit(browser, site, email="new@example.com", phone="+48 600 100 200", firstName="New")
    assert response.status_code == 409, response.content
    assert response["Content-Type"] == "application/problem+json" and response.json()["code"] == "identity.conflict"
    assert not Profile.objects.filter(email="new@example.com").exists()
    assert Event.objects.count() == events
    assert COOKIE not in response.cookies


def test_a_value_of_the_wrong_type_for_a_defined_attribute_names_the_form_field(site, browser):
    AttributeDefinition.objects.create(name="loyaltyPoints", key="loyaltypoints", type="number")
    response = submit(browser, site, email="eve@example.com", attributes={"loyaltyPoints": "many"})
    assert response.status_code == 400, response.content
    assert response.json()["field"] == "fields.attributes.loyaltyPoints"
    assert not Profile.objects.exists()
    assert submit(browser, site, email="eve@example.com", attributes={"loyaltyPoints": "120"}).status_code == 204
    assert Profile.objects.get().attributes == {"loyaltyPoints": 120}


def test_form_text_is_read_as_the_attributes_type(site, browser):
    for name, type_ in [("points", "number"), ("vip", "boolean"), ("sports", "list"), ("born", "date")]:
        AttributeDefinition.objects.create(name=name, key=name, type=type_)
    attributes = {"points": "1.5", "vip": "yes", "sports": "running, tennis", "born": "1990-05-01"}
    assert submit(browser, site, email="fay@example.com", attributes=attributes).status_code == 204
    assert Profile.objects.get().attributes == {
        "points": 1.5,
        "vip": True,
        "sports": ["running", "tennis"],
        "born": "1990-05-01",
    }
    assert submit(browser, site, email="fay@example.com", attributes={"vip": "perhaps"}).status_code == 400


def test_an_idempotency_key_is_ignored_visitors_share_no_scope(site, browser):
    body = {"siteKey": site.key, "type": "page.visit", "url": "https://shop.example/"}
    first = collect(browser, body, HTTP_IDEMPOTENCY_KEY="same")
    second = collect(Client(HTTP_ORIGIN=ORIGIN), body, HTTP_IDEMPOTENCY_KEY="same")
    assert first.status_code == second.status_code == 204
    assert "Idempotent-Replayed" not in second
    assert first.cookies[COOKIE].value != second.cookies[COOKIE].value
    assert Event.objects.filter(action="page.visit").count() == 2
