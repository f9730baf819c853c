"""Platform plumbing: production checks, the OpenAPI schema and docs, health, JSON 404s."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parents[2]


def test_check_deploy_is_clean_with_production_settings():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "crm.settings",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "CRM_REQUIRE_SECRET_KEY": "1",
        "ALLOWED_HOSTS": "crm.example.com",
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "crm.settings",
        "CRM_REQUIRE_SECRET_KEY": "1",
        "CRM_DATA_DIR": str(tmp_path),
        "DATABASE_URL": "postgres://nobody@localhost:1/none",
    }
    env.pop("SECRET_KEY", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_openapi_schema_generates_without_warnings(tmp_path):
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--fail-on-warn", "--file", str(target))
    schema = target.read_text()
    for path in ("/v4/clients:", "/v4/clients/by-email/{value}:", "/crm/v1/list:", "/v4/clients/batch:"):
        assert path in schema


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/", "/api/redoc/"])
def test_docs_are_served_from_local_files(client, path):
    response = client.get(path)
    assert response.status_code == 200
    body = response.content.decode()
    assert "cdn.jsdelivr.net" not in body and "unpkg.com" not in body


@pytest.mark.django_db
def test_the_schema_offers_the_three_auth_methods_as_alternatives(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    schemes = set(schema["components"]["securitySchemes"])
    assert schemes == {"bearer", "apiKeyHeader", "basic"}
    operation = schema["paths"]["/v4/clients"]["post"]
    # A list of requirements is "any one of": each one names a single scheme, together they name all three.
    assert all(len(requirement) == 1 for requirement in operation["security"])
    assert {name for requirement in operation["security"] for name in requirement} == schemes


@pytest.mark.django_db
def test_redoc_bundle_is_local_and_shows_no_remote_logo(client):
    page = client.get("/api/redoc/").content.decode()
    assert "fonts.googleapis.com" not in page and "<script>" not in page
    bundle = client.get("/api/redoc/redoc.standalone.js")
    assert bundle.status_code == 200
    text = b"".join(bundle.streaming_content if bundle.streaming else [bundle.content]).decode()
    assert "cdn.redoc.ly" not in text and "Redoc" in text


@pytest.mark.django_db
def test_favicon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/x-icon"
    assert b"".join(response.streaming_content)[:4] == b"\x00\x00\x01\x00"  # an ICO header


@pytest.mark.django_db
def test_health(client):
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["database"]) == ("ok", "ok")
    assert "replica" not in body  # none configured
    assert body["queue"]["backend"] == "database"


@pytest.mark.django_db
def test_unknown_api_path_is_json_404(client):
    response = client.get("/v4/nothing-here")
    assert response.status_code == 404
    assert response.json()["status"] == 404
