"""Forced merge, undo and resolution through the Synerise surface."""

import pytest

from profiles.models import Profile

pytestmark = pytest.mark.django_db


def test_forced_merge_and_unmerge(api, make_profile):
    ann = make_profile(email="ann@example.com")
    bob = make_profile(email="bob@example.com")
    cid = make_profile(customId="C-1")
    response = api.post(f"/v4/clients/merge/from/ids/{bob.pk},{cid.pk}/to/id/{ann.pk}")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["clientId"] == ann.pk
    assert sorted(body["previousClients"]) == sorted([bob.pk, cid.pk])
    assert api.get(f"/v4/clients/{bob.pk}").json()["clientId"] == ann.pk
    assert api.get("/v4/clients/by-email/bob@example.com").json()["clientId"] == ann.pk

    response = api.post(f"/v4/clients/{ann.pk}/unmerge/{bob.pk}")
    assert response.status_code == 200, response.content
    assert response.json() == {"clientId": ann.pk, "restoredClientId": bob.pk, "notes": []}
    assert api.get(f"/v4/clients/{bob.pk}").json()["email"] == "bob@example.com"
    assert api.get(f"/v4/clients/{ann.pk}").json()["previousClients"] == [cid.pk]


def test_forced_merge_limits(api, make_profile):
    ann = make_profile(email="ann@example.com")
    ids = ",".join(str(i) for i in range(1000, 1021))
    response = api.post(f"/v4/clients/merge/from/ids/{ids}/to/id/{ann.pk}")
    assert response.status_code == 400
    assert response.json()["field"] == "fromClientIds"
    assert api.post(f"/v4/clients/merge/from/ids/{ann.pk}/to/id/{ann.pk}").status_code == 400
    assert api.post(f"/v4/clients/merge/from/ids/abc/to/id/{ann.pk}").status_code == 400
    assert api.post(f"/v4/clients/merge/from/ids/999999/to/id/{ann.pk}").status_code == 404
    assert Profile.objects.count() == 1


def test_unmerge_of_something_not_merged_is_404(api, make_profile):
    ann = make_profile(email="ann@example.com")
    response = api.post(f"/v4/clients/{ann.pk}/unmerge/12345")
    assert response.status_code == 404
    assert response.json()["field"] == "previousClientId"


def test_write_naming_two_profiles_with_different_emails_is_409(api, make_profile):
    ann = make_profile(email="ann@example.com")
    bob = make_profile(customId="BOB", email="bob@example.com")
    response = api.post("/v4/clients", {"email": "ann@example.com", "customId": "BOB"}, format="json")
    assert response.status_code == 409
    body = response.json()
    assert body["clientIds"] == sorted([ann.pk, bob.pk])
    assert (body["field"], body["kind"]) == ("email", "email")
    assert body["values"] == {str(ann.pk): ["ann@example.com"], str(bob.pk): ["bob@example.com"]}


def test_write_naming_a_customid_profile_and_an_email_profile_merges_them(api, make_profile):
    ann = make_profile(email="ann@example.com")
    by_custom_id = make_profile(customId="BOB")
    response = api.post("/v4/clients", {"email": "ann@example.com", "customId": "BOB"}, format="json")
    assert response.status_code == 202
    assert Profile.objects.get().pk == ann.pk
    assert api.get(f"/v4/clients/{by_custom_id.pk}").json()["clientId"] == ann.pk


def test_write_naming_an_anonymous_profile_merges_it(api, make_profile):
    visitor = make_profile(uuid="00000000-0000-4000-8000-000000000001", city="Gdańsk")
    ann = make_profile(email="ann@example.com")
    response = api.post(
        "/v4/clients", {"email": "ann@example.com", "uuid": "00000000-0000-4000-8000-000000000001"}, format="json"
    )
    assert response.status_code == 202
    body = api.get(f"/v4/clients/{ann.pk}").json()
    assert body["previousClients"] == [visitor.pk]
    assert body["city"] == "Gdańsk"


def test_merge_dry_run_answers_what_would_happen_and_writes_nothing(api, make_profile):
    from profiles.models import Event, Identifier, MergeRecord

    ann = make_profile(email="ann@example.com", city="Warsaw", attributes={"points": 5})
    bob = make_profile(email="bob@example.com", city="Gdańsk", last_name="Nowak", attributes={"points": 7, "vip": True})
    before = (
        Profile.objects.count(),
        Identifier.objects.count(),
        MergeRecord.objects.count(),
        Event.objects.count(),
    )
    response = api.post(f"/v4/clients/merge/from/ids/{bob.pk}/to/id/{ann.pk}?dryRun=true")
    assert response.status_code == 200, response.content
    preview = response.json()
    assert (preview["survivor"], preview["merged"]) == (ann.pk, [bob.pk])
    moved = {(i["kind"], i["value"]) for i in preview["identifiersMoved"]}
    assert ("email", "bob@example.com") in moved
    assert all(i["fromClientId"] == bob.pk for i in preview["identifiersMoved"])
    assert preview["filled"]["lastName"] == {"value": "Nowak", "fromClientId": bob.pk}
    assert preview["filled"]["attributes.vip"] == {"value": True, "fromClientId": bob.pk}
    conflicts = {c["field"]: (c["kept"], c["dropped"]) for c in preview["conflicts"]}
    assert conflicts["city"] == ("Warsaw", "Gdańsk")
    assert conflicts["attributes.points"] == (5, 7)
    assert preview["rows"]["profiles.Identifier"] == 2
    assert preview["rows"]["profiles.Event"] == Event.objects.filter(profile=bob).count() > 0
    assert preview["overLimits"] == {"email": {"limit": 1, "values": 2}}
    after = (Profile.objects.count(), Identifier.objects.count(), MergeRecord.objects.count(), Event.objects.count())
    assert after == before
    assert api.post(f"/v4/clients/merge/from/ids/{bob.pk}/to/id/{ann.pk}?dryRun=maybe").status_code == 400
