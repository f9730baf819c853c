"""Incoming integrations in the admin, in a real browser: create one, copy its secret from the page that shows it
once, and sign a request with it; a saved mapping with an unknown target is refused with the reason."""

import json
import time
import uuid

import jwt
import pytest
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from playwright.sync_api import expect
from rest_framework.test import APIClient

from imports.models import Integration, SavedMapping

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "correct horse battery"


@pytest.fixture
def staff(db):
    # Earlier transactional tests flushed the tables: content type ids cached in this process may be stale
    # (the admin's change log refers to them).
    ContentType.objects.clear_cache()
    return User.objects.create_superuser("root", "root@example.com", PASSWORD)


def log_in(page, live_server, user):
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")


def test_create_an_integration_and_use_its_secret(page, live_server, staff):
    log_in(page, live_server, staff)
    page.goto(f"{live_server.url}/admin/imports/integration/add/")
    page.fill("#id_slug", "shop")
    page.fill("#id_name", "Shop")
    page.fill("#id_mapping", json.dumps({"columns": {"customer.mail": {"to": "email"}}}))
    page.click("input[name=_save]")
    secret_box = page.locator("#integration-secret")
    expect(secret_box).to_be_visible()
    secret = secret_box.input_value()
    assert Integration.objects.get(slug="shop").secret == secret
    page.click("text=Done")
    expect(page.locator("#result_list")).to_contain_text("/integrations/incoming/shop")
    now = int(time.time())
    token = jwt.encode({"iat": now, "exp": now + 60, "jti": str(uuid.uuid4())}, secret, algorithm="HS256")
    response = APIClient().post(
        "/integrations/incoming/shop",
        {"customer": {"mail": "ann@example.com"}},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 202


def test_saved_mapping_with_an_unknown_target_is_refused(page, live_server, staff):
    log_in(page, live_server, staff)
    page.goto(f"{live_server.url}/admin/imports/savedmapping/add/")
    page.fill("#id_name", "crm")
    page.fill("#id_mapping", json.dumps({"columns": {"x": {"to": "nickname"}}}))
    page.click("input[name=_save]")
    expect(page.locator(".errorlist")).to_contain_text("Unknown target")
    page.fill("#id_mapping", json.dumps({"columns": {"x": {"to": "email"}}}))
    page.click("input[name=_save]")
    expect(page.locator("#result_list")).to_contain_text("crm")
    assert SavedMapping.objects.get().mapping == {"columns": {"x": {"to": "email"}}}
