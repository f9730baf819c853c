"""POST /customers beyond the seed's examples: modes, limits, enums, mixed batches, double opt-in."""

import pytest

from consents.models import ConsentState, ConsentStatus
from profiles.models import AttributeDefinition, Profile
from tests.api.expertsender.conftest import assert_problem

pytestmark = pytest.mark.django_db


def post(es, *items, mode="AddOrUpdate", match_by="Email"):
    return es.post("/customers", {"mode": mode, "matchBy": match_by, "data": list(items)}, format="json")


# --- modes ------------------------------------------------------------------------------------


def test_add_of_an_existing_customer_fails_and_changes_nothing(es, make_profile):
    ann = make_profile(email="ann@example.com", first_name="Ann")
    body = assert_problem(
        post(es, {"email": "ANN@example.com", "firstName": "X"}, mode="Add"), 400, errors_mention="data[0].email"
    )
    assert body["code"] == "profile.exists"
    assert body["results"][0]["status"] == "failed"
    ann.refresh_from_db()
    assert ann.first_name == "Ann"


def test_add_fails_when_another_identifier_is_known(es, make_profile):
    make_profile(phone="+48501234567")
    body = assert_problem(
        post(es, {"email": "new@example.com", "phone": "501234567"}, mode="Add"), 400, errors_mention="data[0].phone"
    )
    assert body["code"] == "profile.exists"
    assert not Profile.objects.filter(email="new@example.com").exists()


def test_update_of_a_missing_customer_fails_and_creates_nothing(es):
    body = assert_problem(
        post(es, {"email": "ghost@example.com", "firstName": "G"}, mode="Update"), 400, errors_mention="data[0].email"
    )
    assert body["code"] == "profile.not_found"
    assert Profile.objects.count() == 0


@pytest.mark.parametrize(
    ("match_by", "item"),
    [
        ("PhoneNumber", {"phone": "501234567", "firstName": "New"}),
        ("CrmId", {"crmId": "C-1", "firstName": "New"}),
        ("GUID", {"visitorId": "{24F539A0-D257-11EA-92F0-23C0F0AEC77F}", "firstName": "New"}),
        ("VisitorId", {"visitorId": "24f539a0-d257-11ea-92f0-23c0f0aec77f", "firstName": "New"}),
        ("email", {"email": "ann@example.com", "firstName": "New"}),  # enums are case-insensitive
    ],
)
def test_update_matches_by_every_documented_field(es, make_profile, match_by, item):
    ann = make_profile(
        email="ann@example.com", phone="+48501234567", customId="C-1", uuid="24f539a0-d257-11ea-92f0-23c0f0aec77f"
    )
    response = post(es, item, mode="Update", match_by=match_by)
    assert response.status_code == 201, response.content
    ann.refresh_from_db()
    assert ann.first_name == "New"


def test_update_does_not_merge_two_customers(es, make_profile):
    make_profile(email="ann@example.com")
    bob = make_profile(email="bob@example.com", customId="B-1")
    body = assert_problem(post(es, {"email": "ann@example.com", "crmId": "B-1"}, mode="Update"), 400)
    assert body["code"] == "identity.conflict"
    assert Profile.objects.count() == 2
    assert Profile.objects.get(pk=bob.pk).custom_id == "B-1"


def test_match_by_field_must_be_in_each_item(es):
    body = assert_problem(post(es, {"email": "ann@example.com"}, match_by="CrmId"), 400, errors_mention="data[0].crmId")
    assert body["code"] == "identifier.missing"


def test_null_and_empty_fields_are_not_sent(es, make_profile):
    ann = make_profile(email="ann@example.com", phone="+48501234567", first_name="Ann")
    assert post(es, {"email": "ann@example.com", "phone": None, "firstName": "", "crmId": None}).status_code == 201
    ann.refresh_from_db()
    assert (ann.phone, ann.first_name) == ("+48501234567", "Ann")


# --- whole-request errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "mention"),
    [
        ({"mode": "Upsert", "matchBy": "Email", "data": [{"email": "a@example.com"}]}, "mode"),
        ({"matchBy": "Email", "data": [{"email": "a@example.com"}]}, "mode"),
        ({"mode": "Add", "matchBy": "Name", "data": [{"email": "a@example.com"}]}, "matchBy"),
        ({"mode": "Add", "data": [{"email": "a@example.com"}]}, "matchBy"),
        ({"mode": "Add", "matchBy": "Email", "data": {"email": "a@example.com"}}, "data"),
        ({"mode": "Add", "matchBy": "Email", "data": "a@example.com"}, "data"),
        ({"mode": "Add", "matchBy": "Email"}, "data"),
        ({"mode": "Add", "matchBy": "Email", "data": []}, "data"),
        ([{"email": "a@example.com"}], "body"),
    ],
)
def test_bad_requests_name_the_field(es, body, mention):
    assert_problem(es.post("/customers", body, format="json"), 400, errors_mention=f"{mention}:")
    assert Profile.objects.count() == 0


def test_malformed_json_is_a_problem(es):
    assert_problem(es.post("/customers", "{not json", content_type="application/json"), 400)


def test_too_many_items(es, settings):
    settings.BATCH_MAX_ITEMS = 2
    items = [{"email": f"p{i}@example.com"} for i in range(3)]
    assert_problem(post(es, *items), 400, errors_mention="data:")
    assert Profile.objects.count() == 0


# --- documented limits and enums, per item ------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "limit", "value"),
    [
        ("email", 320, lambda n: "a" * (n - 12) + "@example.com"),
        ("phone", 20, lambda n: "5" * n),
        ("crmId", 128, lambda n: "c" * n),
        ("visitorId", 38, lambda n: "v" * n),
        ("firstName", 256, lambda n: "f" * n),
        ("lastName", 256, lambda n: "l" * n),
    ],
)
def test_documented_maximum_lengths(es, field, limit, value):
    item = {"crmId": "C-1", field: value(limit + 1)}
    body = assert_problem(post(es, item, match_by="CrmId"), 400, errors_mention=f"data[0].{field}:")
    assert body["code"] == "field.too_long"
    assert f"{limit}" in body["detail"]
    assert Profile.objects.count() == 0


@pytest.mark.parametrize("field", ["crmId", "firstName", "lastName"])
def test_values_at_the_limit_are_accepted(es, field):
    item = {"crmId": "C-1", field: "x" * {"crmId": 128}.get(field, 256)}
    assert post(es, item, match_by="CrmId").status_code == 201


def test_attribute_name_limit(es):
    items = [{"email": "a@example.com", "customAttributes": [{"name": "n" * 257, "value": "v"}]}]
    assert_problem(post(es, *items), 400, errors_mention="data[0].customAttributes[0].name:")
    assert (
        post(es, {"email": "a@example.com", "customAttributes": [{"name": "n" * 256, "value": "v"}]}).status_code == 201
    )


@pytest.mark.parametrize(
    ("item", "mention"),
    [
        ({"gender": "Other"}, "data[0].gender:"),
        ({"gender": 1}, "data[0].gender:"),
        ({"dateOfBirth": "26.07.2023"}, "data[0].dateOfBirth:"),
        ({"consentsData": {"consents": [{"id": 1, "value": "Maybe"}]}}, "data[0].consentsData.consents[0].value:"),
        ({"consentsData": {"consents": [{"value": "True"}]}}, "data[0].consentsData.consents[0].id:"),
        ({"consentsData": {"consents": [{"id": 99999, "value": "True"}]}}, "data[0].consentsData.consents[0]:"),
        ({"consentsData": {"consents": [], "force": "yes"}}, "data[0].consentsData.force:"),
        (
            {"consentsData": {"consents": [], "confirmationMessageId": "x"}},
            "data[0].consentsData.confirmationMessageId",
        ),
        ({"consentsData": []}, "data[0].consentsData:"),
        ({"customAttributes": {"a": 1}}, "data[0].customAttributes:"),
        ({"customAttributes": [{"value": "x"}]}, "data[0].customAttributes[0].name:"),
        ({"customAttributes": [{"name": "firstName", "value": "x"}]}, "data[0].customAttributes[0]:"),
        ({"customAttributes": [{"name": "a", "value": {"b": 1}}]}, "data[0].customAttributes[0].value:"),
        ({"email": 12}, "data[0].email:"),
        ({"phone": "not-a-phone"}, "data[0].phone:"),
        ({"nickname": "Al"}, "data[0].nickname:"),
    ],
)
def test_bad_items_name_the_field(es, item, mention):
    response = post(es, {"crmId": "C-1", **item}, match_by="CrmId")
    assert_problem(response, 400, errors_mention=mention)
    assert Profile.objects.count() == 0


def test_every_shape_error_of_an_item_is_listed(es):
    body = assert_problem(post(es, {"crmId": "C-1", "gender": "x", "firstName": "f" * 300}, match_by="CrmId"), 400)
    assert {e.split(":")[0] for e in body["errors"]} == {"data[0].gender", "data[0].firstName"}


def test_read_only_fields_of_the_get_body_are_ignored(es):
    item = {"email": "a@example.com", "id": 5, "totalSpent": 10, "rfmSegment": "Champions", "status": 0}
    assert post(es, item).status_code == 201


def test_attribute_values_take_the_type_of_their_definition(es, make_profile):
    make_profile(email="a@example.com", attributes={"points": 10, "vip": False})
    attrs = [{"name": "points", "value": "25"}, {"name": "vip", "value": "True"}]
    assert post(es, {"email": "a@example.com", "customAttributes": attrs}).status_code == 201
    assert Profile.objects.get().attributes == {"points": 25, "vip": True}
    attrs = [{"name": "points", "value": "many"}]
    assert_problem(
        post(es, {"email": "a@example.com", "customAttributes": attrs}),
        400,
        errors_mention="data[0].customAttributes[0]:",
    )


def test_new_attributes_get_definitions(es):
    attrs = [{"name": "shoeSize", "value": "42"}]
    assert post(es, {"email": "a@example.com", "customAttributes": attrs}).status_code == 201
    assert AttributeDefinition.objects.get(name="shoeSize").type == "string"


# --- batches ------------------------------------------------------------------------------------


def test_mixed_batch_names_the_bad_items_and_saves_nothing(es):
    """ "400: The request was not processed" — one bad customer and no customer is saved."""
    response = post(
        es,
        {"email": "one@example.com", "firstName": "One"},
        {"email": "two@example.com", "gender": "Robot"},
        {"email": "three@example.com", "phone": "nope"},
        {"email": "four@example.com", "firstName": "Four"},
    )
    body = assert_problem(response, 400)
    assert [e.split(":")[0] for e in body["errors"]] == ["data[1].gender", "data[2].phone"]
    assert [r["status"] for r in body["results"]] == ["notSaved", "failed", "failed", "notSaved"]
    assert "2 of 4" in body["detail"] and "no customer was saved" in body["detail"]
    assert not Profile.objects.exists()


def test_all_good_batch_is_201_with_one_result_per_item(es, make_profile):
    make_profile(email="two@example.com")
    response = post(es, {"email": "one@example.com"}, {"email": "two@example.com", "lastName": "Two"})
    assert response.status_code == 201
    assert [r["status"] for r in response.json()["data"]] == ["created", "updated"]


def test_item_is_all_or_nothing(es, newsletter):
    """A consent that cannot be set undoes the profile write of the same item."""
    item = {
        "phone": "501234567",
        "firstName": "P",
        "consentsData": {"consents": [{"id": newsletter.pk, "value": "AwaitingConfirmation"}]},
    }
    body = assert_problem(
        post(es, item, match_by="PhoneNumber"), 400, errors_mention="data[0].consentsData.consents[0]"
    )
    assert body["code"] == "consent.no_email"
    assert Profile.objects.count() == 0


# --- consents -----------------------------------------------------------------------------------


def test_awaiting_confirmation_sends_the_double_opt_in_email(
    es, newsletter, mailoutbox, django_capture_on_commit_callbacks, immediate_tasks
):
    consents = {"consents": [{"id": newsletter.pk, "value": "AwaitingConfirmation"}], "confirmationMessageId": 3}
    with django_capture_on_commit_callbacks(execute=True):
        assert post(es, {"email": "ann@example.com", "consentsData": consents}).status_code == 201
    profile = Profile.objects.get()
    assert ConsentState.objects.get(profile=profile, agreement=newsletter).status == ConsentStatus.AWAITING
    assert [m.to for m in mailoutbox] == [["ann@example.com"]]
    with django_capture_on_commit_callbacks(execute=True):
        post(es, {"email": "ann@example.com", "consentsData": consents})
    assert len(mailoutbox) == 1  # asked already: no second e-mail without force
    with django_capture_on_commit_callbacks(execute=True):
        post(es, {"email": "ann@example.com", "consentsData": {**consents, "force": True}})
    assert len(mailoutbox) == 2
    data = es.get("/customers/email/ann@example.com").json()["data"]
    assert data["consentsData"] == {"consents": [{"id": newsletter.pk, "value": "AwaitingConfirmation"}]}


def test_awaiting_confirmation_on_an_agreement_without_double_opt_in(es, email_agreement):
    consents = {"consents": [{"id": email_agreement.pk, "value": "AwaitingConfirmation"}]}
    body = assert_problem(post(es, {"email": "a@example.com", "consentsData": consents}), 400)
    assert body["code"] == "consent.confirmation_not_required"
    assert Profile.objects.count() == 0


def test_idempotency_key_replays_the_first_answer(es):
    first = es.post(
        "/customers",
        {"mode": "Add", "matchBy": "Email", "data": [{"email": "a@example.com"}]},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k1",
    )
    again = es.post(
        "/customers",
        {"mode": "Add", "matchBy": "Email", "data": [{"email": "a@example.com"}]},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k1",
    )
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
