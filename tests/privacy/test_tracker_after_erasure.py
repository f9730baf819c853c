"""A browser whose profile was erased still carries the old uuid in its cookie: the tracker starts it afresh
(a new uuid and cookie) instead of failing every visit, and a sign-up from it makes a new profile."""

import pytest

from privacy.services import profile_erase
from profiles.models import Profile
from tests.api.test_tracker import COOKIE, browser, owner_of, site, submit, visit  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db


def test_an_erased_browser_uuid_is_replaced_on_the_next_visit_and_sign_up(site, browser):  # noqa: F811
    old_uuid = visit(browser, site).cookies[COOKIE].value
    assert submit(browser, site, email="gone@example.com").status_code == 204
    erased = owner_of(old_uuid)
    profile_erase(profile=erased, source="tests")

    response = visit(browser, site)  # the browser still sends the erased uuid
    assert response.status_code == 204, response.content
    new_uuid = response.cookies[COOKIE].value
    assert new_uuid != old_uuid
    assert owner_of(new_uuid).anonymous

    browser.cookies[COOKIE] = old_uuid  # a second tab that still had the old cookie signs up
    response = submit(browser, site, email="gone@example.com", firstName="Again")
    assert response.status_code == 204, response.content
    again = Profile.objects.get(email="gone@example.com")
    assert again.pk != erased.pk and again.uuid != old_uuid
    assert response.cookies[COOKIE].value == again.uuid
