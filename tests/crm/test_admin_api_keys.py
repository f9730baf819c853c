import re

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from rest_framework.test import APIClient

from crm.models import ApiKey, hash_secret
from crm.services import api_key_create

LIST_URL = reverse("admin:crm_apikey_changelist")
ADD_URL = reverse("admin:crm_apikey_add")
SECRET_RE = re.compile(r"crm_[0-9a-f]{10}_[A-Za-z0-9_\-]{40,}")


def lookup(secret: str, email: str):
    client = APIClient()
    return client.get(f"/v4/clients/by-email/{email}", HTTP_AUTHORIZATION=f"Bearer {secret}")


@pytest.fixture
def created(admin_client, make_profile):
    """A key created in the admin: the response that showed its secret, the key, the secret."""
    make_profile(email="known@example.com")
    response = admin_client.post(ADD_URL, {"name": "shop sync", "scopes": ["read", "write"], "_save": "Save"})
    assert response.status_code == 200
    [secret] = set(SECRET_RE.findall(response.text))
    return response, ApiKey.objects.get(), secret


def test_creating_a_key_shows_its_secret_once_and_stores_only_a_hash(admin_client, created):
    response, key, secret = created

    assert "no-store" in response["Cache-Control"]
    assert key.name == "shop sync"
    assert key.scopes == ["read", "write"]
    assert key.created_by == get_user_model().objects.get(username="admin")
    assert key.secret_hash == hash_secret(secret)
    stored = ApiKey.objects.filter(pk=key.pk).values().get()
    assert secret not in {str(value) for value in stored.values()}
    # Never again: not on the key's page, not in the list (and the hash is shown nowhere).
    for url in (reverse("admin:crm_apikey_change", args=[key.pk]), LIST_URL):
        page = admin_client.get(url)
        assert page.status_code == 200
        assert secret not in page.text
        assert key.secret_hash not in page.text
        assert key.prefix in page.text


def test_the_shown_secret_authenticates_against_the_api(created):
    _, _, secret = created

    response = lookup(secret, "known@example.com")

    assert response.status_code == 200
    assert response.json()["email"] == "known@example.com"
    assert lookup(secret[:-1] + ("A" if secret[-1] != "A" else "B"), "known@example.com").status_code == 401


def test_a_key_needs_a_scope(admin_client):
    response = admin_client.post(ADD_URL, {"name": "no scopes", "_save": "Save"})

    assert response.status_code == 200
    assert "scopes" in response.context["adminform"].form.errors
    assert not ApiKey.objects.exists()


def test_a_blank_name_is_refused_by_the_service(admin_client):
    response = admin_client.post(ADD_URL, {"name": "   ", "scopes": ["read"], "_save": "Save"})

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["name"]
    assert not ApiKey.objects.exists()


def test_deactivating_from_the_list_stops_the_secret(admin_client, created):
    _, key, secret = created
    other, _ = api_key_create(name="other", scopes=["read"])

    response = admin_client.post(LIST_URL, {"action": "deactivate", "_selected_action": [key.pk]})

    assert response.status_code == 302
    key.refresh_from_db()
    other.refresh_from_db()
    assert key.is_active is False
    assert other.is_active is True
    assert lookup(secret, "known@example.com").status_code == 401


def test_deactivating_from_the_key_page(admin_client, created):
    _, key, secret = created
    url = reverse("admin:crm_apikey_change", args=[key.pk])

    response = admin_client.post(url, {"CHANGE_FORM-action": "deactivate", "_selected_action": [key.pk]})

    assert response.status_code == 302
    key.refresh_from_db()
    assert key.is_active is False
    assert lookup(secret, "known@example.com").status_code == 401


def test_the_key_page_changes_nothing_and_keys_are_not_deleted(admin_client, created):
    _, key, _ = created
    url = reverse("admin:crm_apikey_change", args=[key.pk])

    admin_client.post(url, {"name": "renamed", "scopes": ["admin"], "is_active": "", "_save": "Save"})
    delete = admin_client.post(reverse("admin:crm_apikey_delete", args=[key.pk]), {"post": "yes"})

    key.refresh_from_db()
    assert (key.name, key.scopes, key.is_active) == ("shop sync", ["read", "write"], True)
    assert delete.status_code == 403
    assert ApiKey.objects.filter(pk=key.pk).exists()
