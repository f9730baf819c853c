"""ExpertSender's documented examples: the POST example body verbatim, then real values, and the four GETs."""

import copy
from datetime import UTC, date, datetime

import pytest

from consents.models import ConsentState, ConsentStatus
from profiles.models import Profile
from profiles.selectors import profile_commerce
from profiles.services.transactions import TransactionInput, transactions_record
from tests.api.expertsender.conftest import PROBLEM_KEYS, assert_problem

pytestmark = pytest.mark.django_db

# The seed's "POST method – request body", character for character.
ADD_EXAMPLE = {
    "mode": "Add",
    "matchBy": "Email",
    "data": [
        {
            "email": "string",
            "phone": "string",
            "crmId": "string",
            "firstName": "string",
            "lastName": "string",
            "dateOfBirth": "2023-07-26T12:28:33.490Z",
            "gender": "Female",
            "customAttributes": [{"name": "string", "value": "string"}],
            "consentsData": {"consents": [{"id": 0, "value": "False"}], "force": True, "confirmationMessageId": 0},
        }
    ],
}
# The keys of the seed's GET 200 body (identical in the four GET methods).
GET_DATA_KEYS = {
    "email",
    "phone",
    "crmId",
    "firstName",
    "lastName",
    "dateOfBirth",
    "gender",
    "rfmSegment",
    "totalSpent",
    "totalOrders",
    "totalOrderReturns",
    "avgOrder",
    "avgPricePoint",
    "lastOrder",
    "avgTimeBetweenOrdersInDays",
    "currencySymbol",
    "customAttributes",
    "consentsData",
}


def real(example, email_agreement, **changes):
    """The seed's body with its placeholders replaced by real values; the shape untouched."""
    body = copy.deepcopy(example)
    item = body["data"][0]
    item.update(email="adam@email.com", phone="123456789", crmId="CRM-12", firstName="Adam", lastName="Nowak")
    item["customAttributes"] = [{"name": "loyaltyLevel", "value": "gold"}]
    item["consentsData"]["consents"] = [{"id": email_agreement.pk, "value": "True"}]
    item.update(changes)
    return body


def test_add_example_verbatim_is_a_400_naming_the_placeholders(es):
    """The seed's placeholders ("string", consent id 0) are not real values: 400, RFC 7807, nothing saved."""
    response = es.post("/customers", ADD_EXAMPLE, format="json")
    body = assert_problem(response, 400, errors_mention="data[0].consentsData.consents[0]")
    assert "0" in body["detail"]
    assert Profile.objects.count() == 0


def test_add_example_with_placeholder_email_names_the_email(es, email_agreement):
    body = copy.deepcopy(ADD_EXAMPLE)
    body["data"][0]["consentsData"]["consents"][0]["id"] = email_agreement.pk
    response = es.post("/customers", body, format="json")
    assert_problem(response, 400, errors_mention="data[0].email")
    assert Profile.objects.count() == 0


def test_add_example_with_real_values_creates_the_customer(es, email_agreement):
    response = es.post("/customers", real(ADD_EXAMPLE, email_agreement), format="json")
    assert response.status_code == 201, response.content
    [created] = response.json()["data"]
    assert created["status"] == "created"
    profile = Profile.objects.get()
    assert created["id"] == profile.pk
    assert (profile.email, profile.phone, profile.custom_id) == ("adam@email.com", "+48123456789", "CRM-12")
    assert (profile.first_name, profile.last_name, profile.sex) == ("Adam", "Nowak", "FEMALE")
    assert profile.birth_date == date(2023, 7, 26)
    assert profile.attributes == {"loyaltyLevel": "gold"}
    assert ConsentState.objects.get(profile=profile, agreement=email_agreement).status == ConsentStatus.GRANTED


@pytest.mark.parametrize("mode", ["Update", "AddOrUpdate"])
def test_update_and_add_or_update_as_the_seed_says(es, email_agreement, mode):
    """ "When updating customer data, change the «mode» parameter to «Update»" (and AddOrUpdate)."""
    es.post("/customers", real(ADD_EXAMPLE, email_agreement), format="json")
    body = real(ADD_EXAMPLE, email_agreement, firstName="Adam J.")
    body["mode"] = mode
    body["data"][0]["consentsData"]["consents"][0]["value"] = "False"
    response = es.post("/customers", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["data"][0]["status"] == "updated"
    profile = Profile.objects.get()
    assert profile.first_name == "Adam J."
    assert ConsentState.objects.get(profile=profile, agreement=email_agreement).status == ConsentStatus.DENIED


def test_add_or_update_creates_when_missing(es, email_agreement):
    body = real(ADD_EXAMPLE, email_agreement)
    body["mode"] = "AddOrUpdate"
    assert es.post("/customers", body, format="json").status_code == 201
    assert Profile.objects.filter(email="adam@email.com").exists()


@pytest.fixture
def adam(es, email_agreement):
    es.post("/customers", real(ADD_EXAMPLE, email_agreement), format="json")
    profile = Profile.objects.get()
    t0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
    transactions_record(
        items=[
            TransactionInput(
                order_id="O1",
                client={"email": "adam@email.com"},
                value="100.00",
                currency="PLN",
                time=t0,
                items=[{"sku": "a", "quantity": 2}],
            ),
            TransactionInput(
                order_id="O2",
                client={"clientId": profile.pk},
                value="50",
                currency="PLN",
                time=t0.replace(day=11),
                items=[{"sku": "b", "quantity": 1}],
            ),
            TransactionInput(
                order_id="O3",
                client={"email": "adam@email.com"},
                value="20",
                currency="PLN",
                time=t0.replace(day=5),
                status="returned",
            ),
        ],
        source="tests",
    )
    return profile


@pytest.mark.parametrize(
    "path",
    [
        "/customers/id/{pk}",
        "/customers/id/{{{pk}}}",  # the seed's own example: https://client.ecdp.app/customers/id/{12}
        "/customers/email/adam@email.com",
        "/customers/email/{{adam@email.com}}",
        "/customers/email/ADAM@email.com",
        "/customers/phone/123456789",
        "/customers/phone/{{123456789}}",
        "/customers/phone/+48123456789",
        "/customers/crmId/CRM-12",
    ],
)
def test_get_methods_answer_the_documented_body(es, adam, email_agreement, path):
    response = es.get(path.format(pk=adam.pk))
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"status", "data"}
    assert body["status"] == 0
    data = body["data"]
    assert set(data) >= GET_DATA_KEYS and set(data) - GET_DATA_KEYS == {"id", "visitorId"}
    assert data["id"] == adam.pk
    assert (data["email"], data["phone"], data["crmId"]) == ("adam@email.com", "+48123456789", "CRM-12")
    assert (data["firstName"], data["lastName"], data["gender"]) == ("Adam", "Nowak", "Female")
    assert data["dateOfBirth"] == "2023-07-26T00:00:00.000Z"
    assert data["customAttributes"] == [{"name": "loyaltyLevel", "value": "gold"}]
    assert data["consentsData"] == {"consents": [{"id": email_agreement.pk, "value": "True"}]}


def test_get_carries_the_commerce_figures_of_the_selector(es, adam):
    data = es.get(f"/customers/id/{adam.pk}").json()["data"]
    figures = profile_commerce(profile_id=adam.pk)
    assert data["totalSpent"] == figures["totalSpent"] == 150.0
    assert data["totalOrders"] == figures["totalOrders"] == 2
    assert data["totalOrderReturns"] == figures["totalOrderReturns"] == 1
    assert data["avgOrder"] == figures["avgOrder"] == 75.0
    assert data["avgPricePoint"] == figures["avgPricePoint"]
    assert data["avgTimeBetweenOrdersInDays"] == figures["avgTimeBetweenOrdersInDays"] == 10.0
    assert data["lastOrder"] == "2026-01-11T12:00:00.000Z"
    assert data["currencySymbol"] == figures["currencySymbol"]
    assert data["rfmSegment"] == figures["rfmSegment"]


def test_get_of_a_customer_without_orders_has_zeros(es, make_profile):
    ann = make_profile(email="ann@example.com")
    data = es.get("/customers/email/ann@example.com").json()["data"]
    assert data["id"] == ann.pk
    assert (data["totalSpent"], data["totalOrders"], data["lastOrder"], data["gender"]) == (0, 0, None, "NotSpecified")
    assert data["consentsData"] == {"consents": []}


@pytest.mark.parametrize(
    "path",
    [
        "/customers/id/999999",
        "/customers/id/abc",
        "/customers/email/nobody@example.com",
        "/customers/email/not-an-email",
        "/customers/phone/500000000",
        "/customers/crmId/none-such",
    ],
)
def test_get_404_is_the_documented_problem(es, adam, path):
    body = assert_problem(es.get(path), 404)
    assert set(body) == PROBLEM_KEYS | {"code"}


@pytest.mark.parametrize("path", ["/customers/id/1", "/customers/email/adam@email.com"])
def test_get_401_without_a_key(anon_api, adam, path):
    body = assert_problem(anon_api.get(path), 401)
    assert set(body) == PROBLEM_KEYS | {"code"}


def test_post_401_with_a_wrong_key(anon_api):
    anon_api.credentials(HTTP_X_API_KEY="not-a-key")
    assert_problem(anon_api.post("/customers", ADD_EXAMPLE, format="json"), 401)


def test_post_with_a_read_only_key_is_401_as_the_seed_says(anon_api, read_key):
    anon_api.credentials(HTTP_X_API_KEY=read_key[1])
    assert_problem(anon_api.post("/customers", ADD_EXAMPLE, format="json"), 401)
    assert Profile.objects.count() == 0


def test_read_key_may_get(anon_api, read_key, adam):
    anon_api.credentials(HTTP_X_API_KEY=read_key[1])
    assert anon_api.get("/customers/crmId/CRM-12").status_code == 200


def test_unknown_customers_path_is_an_rfc7807_404(es):
    body = assert_problem(es.get("/customers/nickname/adam"), 404)
    assert body["instance"] == "/customers/nickname/adam"
