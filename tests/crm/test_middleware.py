"""The API's paths skip Django's authentication and messages middleware (crm/middleware.py): only API views
live there, and their answers keep every header the other middleware set."""

import re

import pytest
from django.conf import settings
from django.test import RequestFactory
from django.urls import get_resolver
from django.utils.csp import build_policy
from rest_framework.views import APIView

from consents.context import RequestMetaMiddleware, current_request_meta
from crm.middleware import API_PATH_PREFIXES, is_api_path


def _routes(patterns, prefix="/"):
    for pattern in patterns:
        if hasattr(pattern, "url_patterns"):
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern.callback


def test_every_route_under_the_api_prefixes_is_a_csrf_exempt_api_view():
    api_routes = [(route, view) for route, view in _routes(get_resolver().url_patterns) if is_api_path(route)]
    assert len(api_routes) > 30  # the surfaces' routes are all there
    for route, view in api_routes:
        view_class = getattr(view, "cls", None)
        assert view_class is not None and issubclass(view_class, APIView), route
        assert getattr(view, "csrf_exempt", False), route
    # And nothing outside the API is caught by the prefixes: the admin, the docs, the consent pages, health.
    for route, _ in _routes(get_resolver().url_patterns):
        if route.startswith(("/admin/", "/api/", "/consents/", "/health", "/tracker")):
            assert not is_api_path(route), route


def test_the_middleware_classes_are_djangos_subclasses_in_settings():
    # check --deploy looks for these by name.
    assert "django.contrib.sessions.middleware.SessionMiddleware" in settings.MIDDLEWARE
    assert "django.middleware.csrf.CsrfViewMiddleware" in settings.MIDDLEWARE
    assert "crm.middleware.MessageMiddleware" in settings.MIDDLEWARE
    assert "crm.middleware.ContentSecurityPolicyMiddleware" in settings.MIDDLEWARE
    assert all(prefix.startswith("/") for prefix in API_PATH_PREFIXES)


@pytest.mark.django_db
def test_an_api_answer_keeps_its_security_headers_and_sets_no_browser_cookie(api, make_profile):
    make_profile(email="mw@example.com")
    response = api.get("/v4/clients/by-email/mw@example.com")
    assert response.status_code == 200
    assert response["Content-Security-Policy"] == build_policy(settings.SECURE_CSP)  # no nonce: none was used
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"] == "no-store"
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])
    assert "RateLimit" in response
    assert not response.cookies  # no session, CSRF or messages cookie
    assert "Cookie" not in response.get("Vary", "")
    assert not hasattr(response.wsgi_request, "_messages")


@pytest.mark.django_db
def test_an_api_error_outside_any_view_keeps_the_surface_shape(api):
    response = api.get("/v4/clients/no/such/route")
    assert response.status_code == 404
    assert response.json()["status"] == 404
    assert "Content-Security-Policy" in response


@pytest.mark.django_db
def test_pages_outside_the_api_still_get_sessions_csrf_and_a_fresh_nonce_each_time(client):
    first, second = client.get("/admin/login/"), client.get("/admin/login/")
    assert first.status_code == second.status_code == 200
    assert "csrftoken" in first.cookies
    nonces = [re.search(r"'nonce-([^']+)'", r["Content-Security-Policy"]).group(1) for r in (first, second)]
    assert nonces[0] != nonces[1]
    assert hasattr(first.wsgi_request, "_messages") and hasattr(first.wsgi_request, "user")


def test_the_request_meta_is_read_from_the_request_only_when_asked():
    request = RequestFactory().get("/v4/clients", REMOTE_ADDR="203.0.113.7", HTTP_USER_AGENT="agent/1.0")
    seen = []

    def view(req):
        seen.append(current_request_meta())
        seen.append(current_request_meta())
        return None

    RequestMetaMiddleware(view)(request)
    assert seen[0].ip_address == "203.0.113.7" and seen[0].user_agent == "agent/1.0"
    assert seen[1] is seen[0]
    assert current_request_meta() is None  # outside the request
