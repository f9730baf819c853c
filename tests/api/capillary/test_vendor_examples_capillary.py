"""Capillary's documented examples: both example bodies verbatim, the documented response, skipChangeIdentifier,
conflicts and bad input per item, Basic auth and the Capillary error shape."""

import base64
import copy

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from consents.models import Agreement, ConsentState, ConsentStatus
from profiles.models import Profile

pytestmark = pytest.mark.django_db

PATH = "/v2/integrations/customer/upsert/bulk"
# The seed's first example, verbatim (its "extendedFields" sits next to "profiles").
EXAMPLE_1 = [
    {
        "profiles": [
            {
                "firstName": "Vishal",
                "lastName": "K",
                "identifiers": [
                    {"type": "externalId", "value": "VISHKWJEJWJC2381"},
                    {"type": "mobile", "value": "916360499160"},
                ],
                "commChannels": [
                    {
                        "type": "mobile",
                        "value": "916360499160",
                        "primary": True,
                        "verified": True,
                        "meta": {"lastViewedDate": "", "residence": True, "office": False},
                    }
                ],
                "source": "WEB_ENGAGE",
                "accountId": "311c4dd1",
            }
        ],
        "extendedFields": {"gender": "Male"},
    }
]
# The seed's second example (subscription info), verbatim.
EXAMPLE_2 = [
    {
        "loyaltyInfo": {"loyaltyType": "loyalty"},
        "profiles": [{"identifiers": [{"type": "mobile", "value": "6289999999"}]}],
        "statusLabel": "Active",
        "subscriptionInfo": {
            "subscriptions": [
                {
                    "channel": "ios",
                    "accountId": "~1341059D8",
                    "priority": "BULK",
                    "type": "OPTIN",
                    "sourceName": "WEB_ENGAGE",
                }
            ]
        },
    }
]
# Keys of the seed's response example.
RESULT_KEYS = {"id", "profiles", "loyaltyInfo", "segments", "associatedWith", "extendedFields", "cardDetails"}
PROFILE_KEYS = {
    "firstName",
    "lastName",
    "attribution",
    "fields",
    "allFields",
    "identifiers",
    "commChannels",
    "source",
    "userId",
    "accountId",
    "conflictingProfileList",
    "autoUpdateTime",
    "identifiersAll",
}


def basic(secret: str) -> str:
    return "Basic " + base64.b64encode(f"{secret}:".encode()).decode()


@pytest.fixture
def cap(write_key):
    """A client as a Capillary integration sends requests: HTTP Basic."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic(write_key[1]))
    return client


def upsert(client, body, query="?skipChangeIdentifier=false"):
    return client.post(PATH + query, body, format="json")


def ok(response, count=1):
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"response", "totalCount", "failureCount"}
    assert body["totalCount"] == len(body["response"]) == count
    for item in body["response"]:
        assert set(item) == {"entityId", "result", "errors", "warnings"}
    return body


def test_example_1_verbatim(cap):
    body = ok(upsert(cap, EXAMPLE_1))
    assert body["failureCount"] == 0
    [item] = body["response"]
    assert item["errors"] == [] and item["warnings"] == []
    profile = Profile.objects.get()
    assert item["entityId"] == profile.pk
    result = item["result"]
    assert set(result) >= RESULT_KEYS and result["id"] == profile.pk
    [doc] = result["profiles"]
    assert set(doc) >= PROFILE_KEYS
    assert (doc["firstName"], doc["lastName"], doc["source"], doc["accountId"]) == (
        "Vishal",
        "K",
        "WEB_ENGAGE",
        "311c4dd1",
    )
    assert doc["userId"] == profile.pk
    assert {"type": "externalId", "value": "VISHKWJEJWJC2381"} in doc["identifiers"]
    assert {"type": "mobile", "value": "916360499160"} in doc["identifiers"]
    assert sorted(map(str, doc["identifiersAll"])) == sorted(map(str, doc["identifiers"]))
    [channel] = doc["commChannels"]
    assert (channel["type"], channel["value"], channel["primary"], channel["verified"]) == (
        "mobile",
        "916360499160",
        True,
        True,
    )
    assert doc["attribution"]["createDate"] and doc["attribution"]["createdBy"]["type"] == "API_KEY"
    assert result["extendedFields"] == {"gender": "Male"}
    assert result["loyaltyInfo"]["lifetimePurchases"] == 0
    assert (profile.custom_id, profile.phone, profile.sex) == ("VISHKWJEJWJC2381", "+916360499160", "MALE")


def test_example_1_twice_updates_the_same_customer(cap):
    first = ok(upsert(cap, EXAMPLE_1))["response"][0]["entityId"]
    again = ok(upsert(cap, EXAMPLE_1))["response"][0]
    assert again["entityId"] == first and again["errors"] == []
    assert again["result"]["profiles"][0]["attribution"]["createdBy"] is None
    assert Profile.objects.count() == 1


@override_settings(PHONE_DEFAULT_REGION="IN")
def test_example_2_verbatim_in_an_indian_default_region(cap):
    """The mobile has no country code; an organisation in India (Capillary's home) sets its default region."""
    body = ok(upsert(cap, EXAMPLE_2))
    assert body["failureCount"] == 0
    [item] = body["response"]
    profile = Profile.objects.get()
    assert profile.phone == "+916289999999"
    assert profile.attributes["loyaltyType"] == "loyalty" and profile.attributes["statusLabel"] == "Active"
    push = Agreement.objects.get(key="push")
    assert ConsentState.objects.get(profile=profile, agreement=push).status == ConsentStatus.GRANTED
    result = item["result"]
    assert result["loyaltyInfo"]["loyaltyType"] == "loyalty"
    assert result["statusLabel"] == "Active"
    assert result["subscriptionInfo"]["subscriptions"] == [{"channel": "PUSH", "type": "OPTIN", "priority": "BULK"}]


def test_example_2_verbatim_with_the_polish_default_region_is_a_per_item_error(cap):
    body = ok(upsert(cap, EXAMPLE_2))
    assert body["failureCount"] == 1
    [item] = body["response"]
    assert item["entityId"] is None and item["result"] is None
    [error] = item["errors"]
    assert error["status"] is False and error["code"] == 8006 and "6289999999" in error["message"]
    assert Profile.objects.count() == 0


def test_optout_denies_the_consent(cap):
    body = copy.deepcopy(EXAMPLE_1)
    body[0]["subscriptionInfo"] = {
        "subscriptions": [
            {"channel": "EMAIL", "type": "OPTOUT", "priority": "BULK"},
            {"channel": "SMS", "type": "OPTIN"},
        ]
    }
    result = ok(upsert(cap, body))["response"][0]["result"]
    profile = Profile.objects.get()
    states = dict(ConsentState.objects.filter(profile=profile).values_list("agreement__key", "status"))
    assert states == {"email": ConsentStatus.DENIED, "sms": ConsentStatus.GRANTED}
    assert {s["channel"]: s["type"] for s in result["subscriptionInfo"]["subscriptions"]} == {
        "EMAIL": "OPTOUT",
        "SMS": "OPTIN",
    }


def test_transactional_subscription_is_a_warning(cap):
    body = copy.deepcopy(EXAMPLE_1)
    body[0]["subscriptionInfo"] = {"subscriptions": [{"channel": "SMS", "type": "OPTIN", "priority": "TRANS"}]}
    [item] = ok(upsert(cap, body))["response"]
    assert item["errors"] == []
    assert [(w["status"], w["code"]) for w in item["warnings"]] == [(True, 8022)]
    assert not ConsentState.objects.exists()


# --- skipChangeIdentifier -----------------------------------------------------------------------


@pytest.fixture
def vishal(cap):
    ok(upsert(cap, EXAMPLE_1))
    return Profile.objects.get()


def changed_mobile():
    body = copy.deepcopy(EXAMPLE_1)
    body[0]["profiles"][0]["identifiers"][1]["value"] = "48501234567"
    body[0]["profiles"][0]["commChannels"][0]["value"] = "48501234567"
    return body


def test_skip_change_identifier_false_changes_the_mobile(cap, vishal):
    [item] = ok(upsert(cap, changed_mobile(), "?skipChangeIdentifier=false"))["response"]
    assert item["errors"] == [] and item["warnings"] == []
    vishal.refresh_from_db()
    assert vishal.phone == "+48501234567"
    assert {"type": "mobile", "value": "48501234567"} in item["result"]["profiles"][0]["identifiers"]


@pytest.mark.parametrize("query", ["?skipChangeIdentifier=true", "?skipChangeIdentifier=True", ""])
def test_skip_change_identifier_true_keeps_it_and_warns(cap, vishal, query):
    [item] = ok(upsert(cap, changed_mobile(), query))["response"]
    assert item["errors"] == []
    assert [w["code"] for w in item["warnings"]] == [8020]
    assert "916360499160" in item["warnings"][0]["message"]
    vishal.refresh_from_db()
    assert vishal.phone == "+916360499160"


def test_bad_skip_change_identifier(cap):
    response = upsert(cap, EXAMPLE_1, "?skipChangeIdentifier=maybe")
    assert response.status_code == 400
    assert response.json()["errors"][0]["status"] is False
    assert Profile.objects.count() == 0


# --- conflicts and per-item failures ----------------------------------------------------------------


def test_conflict_is_a_per_item_error_never_a_merge(cap, make_profile):
    ann = make_profile(email="ann@example.com")
    bob = make_profile(email="bob@example.com", customId="B-1")
    body = [
        {
            "profiles": [
                {"identifiers": [{"type": "email", "value": "ann@example.com"}, {"type": "externalId", "value": "B-1"}]}
            ]
        },
        {"profiles": [{"identifiers": [{"type": "email", "value": "carl@example.com"}], "firstName": "Carl"}]},
    ]
    result = ok(upsert(cap, body), count=2)
    assert result["failureCount"] == 1
    conflict, fine = result["response"]
    [error] = conflict["errors"]
    assert (error["code"], error["reason"], error["status"]) == (8010, "identity.conflict", False)
    assert str(ann.pk) in error["message"] and str(bob.pk) in error["message"]
    assert conflict["entityId"] is None
    assert fine["errors"] == [] and fine["result"]["profiles"][0]["firstName"] == "Carl"
    assert Profile.objects.filter(pk__in=[ann.pk, bob.pk]).count() == 2
    assert Profile.objects.get(pk=ann.pk).custom_id is None


@pytest.mark.parametrize(
    ("entity", "code", "mention"),
    [
        ({"profiles": [{"identifiers": [{"type": "wechat", "value": "w1"}]}]}, 8004, "identifiers[0].type"),
        ({"profiles": [{"identifiers": []}]}, 8003, "identifiers"),
        ({"profiles": [{"firstName": "X"}]}, 8003, "identifiers"),
        ({"profiles": []}, 8001, "profiles"),
        ({"profiles": "x"}, 8001, "profiles"),
        ({"profiles": [{"identifiers": [{"type": "cardnumber", "value": "C1"}]}]}, 8003, "identifiers"),
        ({"profiles": [{"identifiers": [{"type": "email", "value": "not-an-email"}]}]}, 8005, "email"),
        (
            {"profiles": [{"identifiers": [{"type": "email", "value": "a@example.com"}], "firstName": ""}]},
            8001,
            "firstName",
        ),
        (
            {"profiles": [{"identifiers": [{"type": "email", "value": "a@example.com"}]}], "statusLabel": ""},
            3017,
            "statusLabel",
        ),
        (
            {
                "profiles": [{"identifiers": [{"type": "email", "value": "a@example.com"}]}],
                "loyaltyInfo": {"loyaltyType": "gold"},
            },
            8001,
            "loyaltyType",
        ),
        (
            {
                "profiles": [{"identifiers": [{"type": "email", "value": "a@example.com"}]}],
                "subscriptionInfo": {"subscriptions": [{"channel": "EMAIL", "type": "MAYBE"}]},
            },
            8009,
            "type",
        ),
        (
            {
                "profiles": [{"identifiers": [{"type": "email", "value": "a@example.com"}]}],
                "subscriptionInfo": {"subscriptions": [{"channel": "carrier-pigeon", "type": "OPTIN"}]},
            },
            8009,
            "carrier-pigeon",
        ),
        (
            {
                "profiles": [{"identifiers": [{"type": "email", "value": "a@example.com"}]}],
                "extendedFields": {"gender": "Robot"},
            },
            8001,
            "gender",
        ),
        (
            {
                "profiles": [
                    {
                        "identifiers": [
                            {"type": "email", "value": "a@example.com"},
                            {"type": "email", "value": "b@example.com"},
                        ]
                    }
                ]
            },
            8001,
            "email",
        ),
        ("not an object", 8001, "[0]"),
    ],
)
def test_bad_customers_fail_alone(cap, entity, code, mention):
    good = {"profiles": [{"identifiers": [{"type": "externalId", "value": "GOOD-1"}]}]}
    result = ok(upsert(cap, [entity, good]), count=2)
    assert result["failureCount"] == 1
    bad, fine = result["response"]
    [error] = bad["errors"]
    assert error["code"] == code and mention in error["message"], error
    assert bad["entityId"] is None and bad["result"] is None
    assert fine["errors"] == [] and fine["entityId"] == Profile.objects.get(custom_id="GOOD-1").pk
    assert Profile.objects.count() == 1


def test_cardnumber_and_extended_fields(cap):
    body = [
        {
            "profiles": [
                {
                    "identifiers": [
                        {"type": "externalId", "value": "E-1"},
                        {"type": "cardnumber", "value": "BUKL0000022598PR"},
                    ]
                }
            ],
            "extendedFields": {"gender": "Female", "city": "Pune", "dob_date": "1990-05-01", "club": "gold"},
        }
    ]

    result = ok(upsert(cap, body))["response"][0]["result"]
    assert {"type": "cardnumber", "value": "BUKL0000022598PR"} in result["profiles"][0]["identifiers"]
    assert result["cardDetails"][0]["cardNumber"] == "BUKL0000022598PR"
    assert result["extendedFields"] == {"gender": "Female", "city": "Pune", "dob_date": "1990-05-01", "club": "gold"}
    profile = Profile.objects.get()
    assert (profile.city, str(profile.birth_date), profile.attributes["club"]) == ("Pune", "1990-05-01", "gold")


def test_unknown_fields_are_warnings(cap):
    body = copy.deepcopy(EXAMPLE_1)
    body[0]["fraudDetails"] = {"status": "NONE"}
    [item] = ok(upsert(cap, body))["response"]
    assert item["errors"] == [] and [w["code"] for w in item["warnings"]] == [8021]


def test_single_object_body_is_accepted(cap):
    assert ok(upsert(cap, EXAMPLE_1[0]))["failureCount"] == 0


@pytest.mark.parametrize("body", [[], "x", 5])
def test_bad_bodies(cap, body):
    response = upsert(cap, body)
    assert response.status_code == 400
    assert set(response.json()) == {"errors", "warnings"}


def test_too_many_customers(cap, settings):
    settings.BATCH_MAX_ITEMS = 1
    assert upsert(cap, EXAMPLE_1 * 2).status_code == 400
    assert Profile.objects.count() == 0


# --- auth and errors ----------------------------------------------------------------------------


def test_basic_auth_with_the_key_as_password(anon_api, write_key):
    anon_api.credentials(HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"till:{write_key[1]}".encode()).decode())
    assert ok(upsert(anon_api, EXAMPLE_1))["failureCount"] == 0


@pytest.mark.parametrize("auth", [None, "Basic " + base64.b64encode(b"nobody:wrong").decode()])
def test_401_in_capillary_shape(anon_api, auth):
    if auth:
        anon_api.credentials(HTTP_AUTHORIZATION=auth)
    response = upsert(anon_api, EXAMPLE_1)
    assert response.status_code == 401
    body = response.json()
    assert set(body) == {"errors", "warnings"}
    assert body["errors"][0]["status"] is False and body["errors"][0]["code"] == 401
    assert Profile.objects.count() == 0


def test_read_key_may_not_upsert(anon_api, read_key):
    anon_api.credentials(HTTP_AUTHORIZATION=basic(read_key[1]))
    response = upsert(anon_api, EXAMPLE_1)
    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == 403


def test_unknown_v2_path_is_a_capillary_404(cap):
    response = cap.get("/v2/customers/lookup/customerDetails")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == 404
