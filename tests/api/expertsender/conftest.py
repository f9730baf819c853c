import pytest
from rest_framework.test import APIClient

PROBLEM_KEYS = {"type", "title", "status", "detail", "instance"}


@pytest.fixture
def es(write_key):
    """A client as an ExpertSender integration sends requests: the key in x-api-key."""
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=write_key[1])
    return client


def assert_problem(response, status, *, errors_mention=None):
    """An RFC 7807 body as ExpertSender's documentation shows it: errors (a list of strings) on 400 only."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert set(body) >= PROBLEM_KEYS, body
    assert body["status"] == status
    assert body["instance"] == response.wsgi_request.path
    assert isinstance(body["title"], str) and body["title"] and body["detail"]
    if status == 400:
        assert isinstance(body["errors"], list) and all(isinstance(e, str) for e in body["errors"])
        if errors_mention:
            assert any(errors_mention in e for e in body["errors"]), body["errors"]
    else:
        assert "errors" not in body
    return body
