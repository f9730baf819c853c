"""The management commands the README names."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import RequestFactory

from crm.models import ApiKey
from profiles.models import AttributeDefinition, Profile

pytestmark = pytest.mark.django_db


def test_create_api_key_prints_the_secret_once_and_stores_a_hash(client):
    out, err = StringIO(), StringIO()
    call_command("create_api_key", "--name", "shop", "--scopes", "read,write", stdout=out, stderr=err)
    secret = out.getvalue().strip()
    key = ApiKey.objects.get(name="shop")
    assert key.scopes == ["read", "write"]
    assert secret.startswith(f"crm_{key.prefix}_")
    assert secret not in key.secret_hash
    assert "cannot be shown again" in err.getvalue()
    assert client.get("/v4/clients", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200


def test_create_api_key_refuses_unknown_scopes():
    with pytest.raises(CommandError, match="Scopes"):
        call_command("create_api_key", "--name", "x", "--scopes", "read,delete", stdout=StringIO(), stderr=StringIO())
    assert not ApiKey.objects.exists()


def test_load_demo_data_creates_realistic_profiles_through_the_services():
    call_command("load_demo_data", "--profiles", "40", stdout=StringIO())
    assert Profile.objects.count() == 40
    recognized = Profile.objects.recognized()
    assert 20 <= recognized.count() <= 40
    assert all(p.first_name and p.email for p in recognized)
    assert set(AttributeDefinition.objects.values_list("name", flat=True)) >= {"loyaltyPoints", "clubMember"}
    call_command("load_demo_data", "--profiles", "40", "--if-empty", stdout=StringIO())
    assert Profile.objects.count() == 40


def test_ensure_admin_prints_a_working_login(client, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    out = StringIO()
    call_command("ensure_admin", stdout=out)
    username, password = out.getvalue().strip().removeprefix("Admin login: ").split(" / ")
    assert client.login(request=RequestFactory().post("/admin/login/"), username=username, password=password)
    again = StringIO()
    call_command("ensure_admin", stdout=again)
    assert again.getvalue() == out.getvalue()  # the same login, not a new password each run
    assert get_user_model().objects.filter(username="admin", is_superuser=True).count() == 1
