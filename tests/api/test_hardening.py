"""Bad input never answers 500: NUL, lone surrogates, deep nesting, duplicate keys, NaN (400 naming the field,
per item where the surface reports per item); the database down is a 503 in the surface's shape; personal
data answers are not cached; a replayed bodiless 202 has no content type; avatarUrl is http(s) only."""

import json
from unittest import mock

import pytest
from django.db import OperationalError
from rest_framework.test import APIClient

from crm.models import Job
from profiles.models import Profile

CAPILLARY = "/v2/integrations/customer/upsert/bulk"
NUL = '"a\\u0000b"'
SURROGATE = '"\\ud800"'


def post_raw(client, path, text, **extra):
    return client.generic("POST", path, text.encode(), content_type="application/json", **extra)


@pytest.mark.parametrize("bad", [NUL, SURROGATE])
def test_bad_text_in_a_synerise_write_is_a_400_naming_the_field(api, bad):
    response = post_raw(api, "/v4/clients", f'{{"email": "a@example.com", "attributes": {{"note": {bad}}}}}')
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["field"] == "attributes.note" and body["code"] == "field.invalid_text"
    assert not Profile.objects.exists()


def test_bad_text_in_a_key_is_refused_too(api):
    response = post_raw(api, "/v4/clients", '{"email": "a@example.com", "attributes": {"n\\u0000": 1}}')
    assert response.status_code == 400 and response.json()["field"] == "attributes"


@pytest.mark.parametrize(
    "path", ["/v4/clients/by-customId/a%00b", "/v4/clients/by-email/a%00b@example.com", "/customers/crmId/a%00b"]
)
def test_a_nul_in_the_path_is_a_400_not_a_500(api, path):
    response = api.get(path, HTTP_X_API_KEY=api._credentials["HTTP_AUTHORIZATION"].split()[1])
    assert response.status_code == 400, response.content


def test_a_nul_in_a_query_parameter_is_a_400(api):
    response = api.get("/v4/clients", {"city": "a\x00b"})
    assert response.status_code == 400 and response.json()["field"] == "city"


def test_a_batch_with_one_bad_item_keeps_the_good_ones(api):
    from profiles.tasks import run_profile_batch

    text = f'[{{"email": "good@example.com"}}, {{"email": "bad@example.com", "firstName": {NUL}}}]'
    response = post_raw(api, "/v4/clients/batch", text)
    assert response.status_code == 202, response.content
    run_profile_batch.call(response.json()["jobId"])
    job = Job.objects.get()
    assert job.counts["created"] == 1 and job.counts["failed"] == 1
    assert job.errors[0]["index"] == 1 and job.errors[0]["field"] == "[1].firstName"
    assert Profile.objects.filter(email="good@example.com").exists()


def test_capillary_reports_bad_text_per_item(api):
    good = {"profiles": [{"identifiers": [{"type": "email", "value": "cg@example.com"}]}]}
    text = f'[{json.dumps(good)}, {{"profiles": [{{"identifiers": [{{"type": "email", "value": {SURROGATE}}}]}}]}}]'
    response = post_raw(api, CAPILLARY, text)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["failureCount"] == 1 and body["response"][0]["errors"] == []
    assert "[1].profiles[0].identifiers[0].value" in body["response"][1]["errors"][0]["message"]


def test_expertsender_names_the_item_and_saves_nothing(api):
    text = f'{{"mode": "Add", "matchBy": "Email", "data": [{{"email": "e1@example.com"}}, {{"email": {NUL}}}]}}'
    response = post_raw(api, "/customers", text)
    assert response.status_code == 400 and response["Content-Type"] == "application/problem+json"
    assert any(line.startswith("data[1].email") for line in response.json()["errors"])
    assert not Profile.objects.exists()


@pytest.mark.parametrize("path", ["/v4/clients", "/v4/clients/batch", "/customers", CAPILLARY, "/v4/events/custom"])
def test_deep_nesting_is_a_400_on_every_post(api, path):
    response = post_raw(api, path, "[" * 10_000 + "]" * 10_000)
    assert response.status_code == 400, response.content
    response = post_raw(api, path, '{"attributes": ' + '{"a": ' * 40 + "1" + "}" * 40 + "}")
    assert response.status_code == 400, response.content


def test_duplicate_keys_are_refused_naming_the_key(api):
    response = post_raw(api, "/v4/clients", '{"email": "a@example.com", "email": "b@example.com"}')
    assert response.status_code == 400
    assert response.json()["field"] == "email" and response.json()["code"] == "body.duplicate_key"


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(api, constant):
    response = post_raw(api, "/v4/clients", f'{{"email": "a@example.com", "attributes": {{"x": {constant}}}}}')
    assert response.status_code == 400


def test_capillary_identifier_type_and_value_must_be_strings(api):
    body = [
        {"profiles": [{"identifiers": [{"type": {"x": 1}, "value": "a@example.com"}]}]},
        {"profiles": [{"identifiers": [{"type": "externalId", "value": 12345}]}]},
        {"profiles": [{"identifiers": [{"type": ["email"], "value": "b@example.com"}]}]},
    ]
    response = api.post(CAPILLARY, body, format="json")
    assert response.status_code == 200
    items = response.json()["response"]
    assert [len(item["errors"]) for item in items] == [1, 1, 1]
    assert ".identifiers[0].type" in items[0]["errors"][0]["message"]
    assert ".identifiers[0].value" in items[1]["errors"][0]["message"]


@pytest.mark.parametrize(
    ("path", "shape"),
    [
        ("/v4/clients/by-email/a@example.com", "synerise"),
        ("/customers/email/a@example.com", "expertsender"),
        (CAPILLARY, "capillary"),
    ],
)
def test_the_database_down_is_a_503_in_the_surface_shape(api, path, shape):
    with mock.patch(
        "django.db.backends.utils.CursorWrapper.execute", side_effect=OperationalError("connection refused")
    ):
        response = api.post(path, [], format="json") if shape == "capillary" else api.get(path)
    assert response.status_code == 503
    assert response["Retry-After"]
    body = response.json()
    if shape == "synerise":
        assert body["status"] == 503 and body["code"] == "database_unavailable" and body["error"]
    elif shape == "expertsender":
        assert response["Content-Type"] == "application/problem+json" and body["status"] == 503
    else:
        assert body["errors"][0]["code"] == 503


def test_personal_data_answers_are_not_stored_by_caches(api, make_profile):
    make_profile(email="cache@example.com")
    response = api.get("/v4/clients/by-email/cache@example.com")
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    assert "no-store" in api.get("/v4/clients/by-email/none@example.com")["Cache-Control"]


def test_a_replayed_bodiless_202_has_no_content_type(api):
    first = api.post("/v4/clients", {"email": "idem@example.com"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = api.post("/v4/clients", {"email": "idem@example.com"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == again.status_code == 202
    assert again["Idempotent-Replayed"] == "true"
    assert not first.has_header("Content-Type") and not again.has_header("Content-Type")


@pytest.mark.parametrize("url", ["javascript:alert(1)", "file:///etc/passwd", "gopher://x/", "data:text/html,x", "//x"])
def test_avatar_url_must_be_http_or_https(api, url):
    response = api.post("/v4/clients", {"email": "av@example.com", "avatarUrl": url}, format="json")
    assert response.status_code == 400 and response.json()["field"] == "avatarUrl"


def test_an_https_avatar_url_is_kept(api):
    url = "https://img.example.com/a.png"
    assert api.post("/v4/clients", {"email": "av@example.com", "avatarUrl": url}, format="json").status_code == 202
    assert Profile.objects.get(email="av@example.com").avatar_url == url


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/customers", {"mode": "Add", "matchBy": "Email", "data": [{"email": "n@example.com",
                                                                    "consentsData": {"consents": [None]}}]}),
        ("/v4/transactions", {"client": {"email": "n@example.com"}, "orderId": "o-1",
                              "value": {"amount": 1, "currency": "PLN"}, "products": [None]}),
    ],
)  # fmt: skip
def test_a_null_item_in_a_list_is_a_400(api, path, body):
    response = api.post(path, body, format="json")
    assert response.status_code == 400, response.content


def test_capillary_null_channel_is_a_per_item_error(api):
    body = [{"profiles": [{"identifiers": [{"type": "email", "value": "c@example.com"}], "commChannels": [None]}]}]
    response = api.post(CAPILLARY, body, format="json")
    assert response.status_code == 200 and response.json()["failureCount"] == 1


def test_the_lookup_answers_the_bytes_drf_would_render(api, make_profile):
    """The lookup skips DRF's template response but not its renderer: same bytes, same Content-Type, and an
    Accept with parameters still gets DRF's own rendering."""
    from rest_framework.renderers import JSONRenderer

    make_profile(email="bytes@example.com", first_name="Zoë", attributes={"points": 1.5})
    response = api.get("/v4/clients/by-email/bytes@example.com")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert response.content == JSONRenderer().render(response.json())
    assert "Zoë".encode() in response.content  # not escaped, as DRF renders it
    plain = APIClient()  # the api fixture's credentials carry an Accept header of their own
    plain.credentials(HTTP_AUTHORIZATION=api._credentials["HTTP_AUTHORIZATION"])
    indented = plain.get("/v4/clients/by-email/bytes@example.com", HTTP_ACCEPT="application/json; indent=4")
    assert indented.status_code == 200 and b'\n    "' in indented.content
    assert plain.get("/v4/clients/by-email/bytes@example.com", HTTP_ACCEPT="text/html").status_code == 406
