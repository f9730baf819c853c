"""The admin login locks out after repeated failures (django-axes); pages carry a nonce-based
Content-Security-Policy that the admin's own inline scripts satisfy; the API docs need no inline script."""

import re

import pytest
from django.contrib.auth import get_user_model

LOGIN = "/admin/login/"


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user("staffer", password="right-password-123", is_staff=True)


def attempt(client, password):
    return client.post(LOGIN, {"username": "staffer", "password": password, "next": "/admin/"})


def test_the_right_password_works_after_a_few_failures(client, staff, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert attempt(client, "wrong").status_code == 200  # the form again, with an error
    assert attempt(client, "right-password-123").status_code == 302


def test_repeated_failures_lock_the_login_out_even_for_the_right_password(client, staff, settings):
    answers = [attempt(client, "wrong").status_code for _ in range(settings.AXES_FAILURE_LIMIT + 2)]
    assert answers[: settings.AXES_FAILURE_LIMIT - 1] == [200] * (settings.AXES_FAILURE_LIMIT - 1)
    assert answers[-1] == 429
    assert attempt(client, "right-password-123").status_code == 429
    assert "_auth_user_id" not in client.session


def test_the_lockout_is_per_address(client, staff, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT + 1):
        attempt(client, "wrong")
    elsewhere = client.post(
        LOGIN, {"username": "staffer", "password": "right-password-123"}, REMOTE_ADDR="198.51.100.9"
    )
    assert elsewhere.status_code == 302


def csp(response) -> str:
    return response["Content-Security-Policy"]


def test_admin_pages_carry_a_nonce_policy_and_every_inline_script_has_the_nonce(admin_client, client, make_profile):
    profile = make_profile(email="csp@example.com")
    pages = ["/admin/", "/admin/profiles/profile/", f"/admin/profiles/profile/{profile.pk}/change/"]
    for url, response in [*((url, admin_client.get(url)) for url in pages), (LOGIN, client.get(LOGIN))]:
        assert response.status_code == 200, url
        policy = csp(response)
        nonce = re.search(r"'nonce-([^']+)'", policy).group(1)
        script_src = policy.split("script-src")[1].split(";")[0]
        assert "'self'" in script_src and "'nonce-" in script_src and "unsafe-inline" not in script_src
        html = response.text
        for tag in re.findall(r"<script\b[^>]*>", html):
            if "src=" in tag or 'type="application/json"' in tag:
                continue
            assert f'nonce="{nonce}"' in tag, (url, tag)
        assert not re.search(r"\son(click|load|change|submit)=", html), url


def test_nonces_differ_per_response(admin_client):
    first, second = csp(admin_client.get("/admin/")), csp(admin_client.get("/admin/"))
    assert first != second


def test_the_api_docs_need_no_inline_script(client):
    for url in ("/api/docs/", "/api/redoc/"):
        html = client.get(url).text
        inline = [tag for tag in re.findall(r"<script\b[^>]*>", html) if "src=" not in tag]
        assert inline == [], (url, inline)
