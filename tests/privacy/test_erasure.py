"""Deleting a profile erases it: every table, the ledger's personal columns, tombstones, the log, a new sign-up."""

import json

import pytest
from django.core.management import call_command

from consents.models import ConsentRecord
from crm.errors import NotFound
from crm.models import IdempotencyRecord, Job
from privacy.models import Erasure, Tombstone
from profiles.models import Event, Profile
from profiles.services import ProfileInput, profile_upsert
from profiles.services.batch import profiles_upsert_many
from tests.privacy.conftest import CUSTOM_ID, EMAIL, FIRST, NEEDLES, PHONE, UUID, VISITOR_UUID, columns_holding

pytestmark = pytest.mark.django_db


def test_the_fixture_really_spreads_the_person_over_every_table(person):
    found = " ".join(columns_holding(NEEDLES))
    for table in (
        "profiles_profile",
        "profiles_identifier",
        "profiles_event",
        "profiles_mergerecord",
        "profiles_transaction",
        "crm_job",
        "crm_idempotencyrecord",
        "django_admin_log",
        "consents_consentrecord",
    ):
        assert table in found, f"the fixture left {table} without the person: the erasure test would prove nothing"


def test_erasure_leaves_nothing_personal_in_any_column(api, person):
    response = api.delete(f"/v4/clients/by-email/{EMAIL}")
    assert response.status_code == 202, response.content
    assert columns_holding(NEEDLES) == []
    ledger = ConsentRecord.objects.filter(client_id__in=person.client_ids)
    assert ledger.exists()
    assert not ledger.exclude(ip_address=None).exists()
    assert not ledger.exclude(user_agent="").exists()
    # The other person in the batch job keeps their item; the person's item is gone from it.
    job = Job.objects.get(pk=person.job_id)
    assert job.payload[0] == {"erased": True}
    assert job.payload[1]["identifiers"]["email"] == "someone.else@example.com"
    assert not IdempotencyRecord.objects.filter(key="note-1").exists()


def test_the_consent_ledger_still_verifies(api, person, capsys):
    assert api.delete(f"/v4/clients/{person.profile.pk}").status_code == 202
    call_command("consent_ledger_verify")
    assert "all intact" in capsys.readouterr().out


def test_who_asked_and_when_is_recorded_without_personal_data(api, person, write_key):
    key, _ = write_key
    assert api.delete(f"/v4/clients/{person.profile.pk}", HTTP_X_REQUEST_ID="erase-req-1").status_code == 202
    erasure = Erasure.objects.get(client_id=person.profile.pk)
    assert erasure.actor == f"api-key:{key.prefix}"
    assert (erasure.source, erasure.request_id) == ("api", "erase-req-1")
    assert erasure.merged_client_ids == [person.visitor_id]
    assert erasure.counts["events"] >= 4 and erasure.counts["orders"] >= 1 and erasure.counts["profile"] >= 5
    [event] = Event.objects.filter(action="profile.deleted")
    assert event.profile_id is None and event.actor == erasure.actor and event.request_id == "erase-req-1"
    assert event.params == {
        "clientId": person.profile.pk,
        "mergedClientIds": [person.visitor_id],
        "erasureId": erasure.pk,
    }


def test_erased_ids_answer_410_and_never_resolve_again(api, person):
    profile = person.profile
    assert api.delete(f"/v4/clients/{profile.pk}").status_code == 202
    for path in (
        f"/v4/clients/{profile.pk}",
        f"/v4/clients/{person.visitor_id}",  # an old merged-in id
        f"/v4/clients/by-uuid/{UUID}",
        f"/v4/clients/by-uuid/{VISITOR_UUID.upper()}",  # an old uuid, normalised like any lookup
        f"/v4/clients/{profile.pk}/events",
        f"/v4/clients/{person.visitor_id}/export",
    ):
        response = api.get(path)
        assert response.status_code == 410, (path, response.content)
        body = response.json()
        assert body["code"] == "profile.erased" and body["error"] == "Gone" and body["path"] == path
    assert api.post(f"/v4/clients/{person.visitor_id}", {"city": "Gdańsk"}, format="json").status_code == 410
    assert api.delete(f"/v4/clients/{profile.pk}").status_code == 410
    # A tracker still sending the old uuid gets 410 instead of quietly growing a new profile under it.
    response = api.post("/v4/events/custom", {"action": "page.visit", "client": {"uuid": VISITOR_UUID}}, format="json")
    assert response.status_code == 410 and response.json()["code"] == "profile.erased"
    response = api.post("/v4/clients", {"email": "new.person@example.com", "uuid": UUID}, format="json")
    assert response.status_code == 410
    [result] = profiles_upsert_many(items=[ProfileInput(identifiers={"uuid": UUID})], source="tests")
    assert result.status == "failed" and result.error["code"] == "profile.erased"
    assert not Profile.objects.filter(uuid__in=[UUID, VISITOR_UUID]).exists()
    # E-mail, phone and customId are not tombstoned: they name nobody now (404), and may sign up again.
    assert api.get(f"/v4/clients/by-email/{EMAIL}").status_code == 404
    assert api.get(f"/v4/clients/by-phone/{PHONE}").status_code == 404


def test_other_surfaces_answer_their_own_not_found(api, person, write_key, rf):
    from api.capillary.errors import render_error as capillary_error

    _, secret = write_key
    assert api.delete(f"/v4/clients/{person.profile.pk}").status_code == 202
    response = api.get(f"/customers/id/{person.profile.pk}", HTTP_X_API_KEY=secret)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["title"] == "Not Found" and response.json()["code"] == "profile.not_found"
    response = api.post(
        "/customers",
        {"mode": "Update", "matchBy": "GUID", "data": [{"visitorId": UUID, "firstName": "Ghost"}]},
        format="json",
        HTTP_X_API_KEY=secret,
    )
    assert response.status_code in (400, 404), response.content
    assert not Profile.objects.filter(first_name="Ghost").exists()
    # Capillary names profiles only by e-mail, mobile and externalId (never tombstoned); should an erased id reach
    # it, its renderer answers Capillary's not-found.
    body = capillary_error(status=410, code="profile.erased", message="erased", field=None, request=rf.get("/v2/"))
    assert body.status_code == 404 and body.data["errors"][0]["code"] == 8015


def test_an_order_naming_an_erased_id_is_gone(api, person):
    assert api.delete(f"/v4/clients/{person.profile.pk}").status_code == 202
    for client in ({"id": person.visitor_id}, {"uuid": UUID}):
        response = api.post(
            "/v4/transactions",
            {"orderId": "ORD-AFTER", "client": client, "value": {"amount": 5, "currency": "PLN"}},
            format="json",
        )
        assert response.status_code == 410, response.content
        assert response.json()["code"] == "profile.erased"


def test_a_new_sign_up_after_erasure_is_a_new_profile(api, person):
    old = person.profile.pk
    assert api.delete(f"/v4/clients/{old}").status_code == 202
    response = api.post("/v4/clients", {"email": EMAIL, "customId": CUSTOM_ID, "firstName": FIRST}, format="json")
    assert response.status_code == 202
    again = api.get(f"/v4/clients/by-email/{EMAIL}").json()
    assert again["clientId"] > old and again["clientId"] != person.visitor_id
    assert again["uuid"] not in (UUID, VISITOR_UUID)
    assert again["previousClients"] == []
    assert api.get(f"/v4/clients/{old}").status_code == 410


def test_the_tombstone_log_holds_ids_and_keyed_digests_only(api, person, erasure_log):
    assert api.delete(f"/v4/clients/{person.profile.pk}").status_code == 202
    text = erasure_log.read_text()
    [line] = text.splitlines()
    entry = json.loads(line)
    assert entry["clientId"] == person.profile.pk and entry["mergedClientIds"] == [person.visitor_id]
    assert set(entry["digests"]) == {"email", "phone", "customId", "uuid"}
    assert len(entry["digests"]["uuid"]) == 2
    for needle in NEEDLES:
        assert needle.lower() not in text.lower()
    assert Tombstone.objects.filter(kind="uuid").count() == 2
    assert Tombstone.objects.filter(kind="clientId").count() == 2


def test_the_log_key_changes_the_digests(settings, make_profile, erasure_log):
    from privacy.services import profile_erase

    a = make_profile(email="a@example.com")
    profile_erase(profile=a, source="tests")
    settings.ERASURE_LOG_KEY = "another key kept elsewhere"
    b = make_profile(email="a@example.com")
    profile_erase(profile=b, source="tests")
    first, second = (json.loads(line) for line in erasure_log.read_text().splitlines())
    assert first["digests"]["email"] != second["digests"]["email"]


def test_an_unwritable_log_erases_nothing(settings, make_profile, tmp_path):
    from privacy.services import ErasureLogUnavailable, profile_erase

    profile = make_profile(email="kept@example.com")
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    settings.ERASURE_LOG_PATH = blocker / "log.jsonl"
    with pytest.raises(ErasureLogUnavailable):
        profile_erase(profile=profile, source="tests")
    assert Profile.objects.filter(pk=profile.pk).exists()
    assert not Erasure.objects.exists()


def test_a_lookup_of_a_live_profile_does_not_ask_the_tombstones(api, make_profile, django_assert_num_queries):
    from profiles.selectors import profile_lookup

    profile = make_profile(email="live@example.com")
    with django_assert_num_queries(2):  # the owner, the row: as before erasure existed
        profile_lookup(kind="email", value="live@example.com")
    # A miss by e-mail: e-mails are not tombstoned, so no second query.
    with django_assert_num_queries(1), pytest.raises(NotFound, match="No profile"):
        profile_lookup(kind="email", value="nobody@example.com")
    assert profile_upsert(data=ProfileInput(identifiers={"email": "live@example.com"}), source="t").profile == profile
