"""The segments API: CRUD, count, preview, a segment's profiles, ?segment= on the lists, a profile's segments,
bad input (400 naming the path), scopes, and 409 when a segment in use is deleted."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from profiles.models import Tag
from profiles.services.tags import tags_add
from segments.membership import segments_refresh_touched
from segments.models import Segment, SegmentMembership
from segments.usage import register_segment_user, segment_users


@pytest.fixture
def people(make_profile):
    vip = Tag.objects.create(name="VIP")
    ann = make_profile(email="ann@example.com", city="Warsaw", attributes={"points": 150})
    bob = make_profile(email="bob@example.com", city="warsaw", attributes={"points": 20})
    cid = make_profile(email="cid@example.com", city="Kraków", attributes={"points": 300})
    tags_add(profiles=[ann, cid], tags=[vip], source="tests")
    return {"ann": ann, "bob": bob, "cid": cid, "vip": vip}


def create(api, name="Big in Warsaw", tree=None):
    tree = tree or {
        "all": [{"field": "city", "op": "eq", "value": "WARSAW"}, {"attribute": "points", "op": "gte", "value": 100}]
    }
    return api.post("/v4/segments", {"name": name, "filter": tree}, format="json")


def test_create_get_list_update_delete(api, people):
    created = create(api)
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["name"] == "Big in Warsaw" and body["createdBy"].startswith("api-key:")
    sid = body["id"]
    assert api.get(f"/v4/segments/{sid}").json()["filter"]["all"][0] == {"field": "city", "op": "eq", "value": "warsaw"}
    listed = api.get("/v4/segments", {"pageSize": 10})
    assert [s["id"] for s in listed.json()] == [sid] and listed["X-Total-Count"] == "1"
    updated = api.put(f"/v4/segments/{sid}", {"name": "VIPs", "filter": {"tag": "vip"}}, format="json")
    assert updated.status_code == 200 and updated.json()["filter"] == {"tagId": people["vip"].pk}
    assert api.delete(f"/v4/segments/{sid}").status_code == 204
    assert api.get(f"/v4/segments/{sid}").status_code == 404


def test_count_preview_clients_and_list_filters(api, people):
    sid = create(api).json()["id"]
    count = api.get(f"/v4/segments/{sid}/count").json()
    assert count["count"] == 1 and count["tookMs"] >= 0
    assert Segment.objects.get(pk=sid).last_count == 1
    clients = api.get(f"/v4/segments/{sid}/clients")
    assert [c["clientId"] for c in clients.json()] == [people["ann"].pk] and clients["X-Total-Count"] == "1"
    for path in ("/v4/clients", "/crm/v1/list"):
        assert [c["clientId"] for c in api.get(path, {"segment": sid}).json()] == [people["ann"].pk]
    preview = api.post("/v4/segments/preview", {"filter": {"tag": "VIP"}}, format="json").json()
    assert preview["count"] == 2
    assert {c["clientId"] for c in preview["clients"]} == {people["ann"].pk, people["cid"].pk}


def test_a_profiles_segments_are_its_membership_rows(api, people, django_capture_on_commit_callbacks):
    sid = create(api).json()["id"]
    Segment.objects.filter(pk=sid)  # filled by the task the create enqueued; run it as the worker would
    from segments.membership import segment_fill

    segment_fill(segment=Segment.objects.get(pk=sid))
    answer = api.get(f"/v4/clients/{people['ann'].pk}/segments").json()
    assert [(s["id"], s["name"]) for s in answer] == [(sid, "Big in Warsaw")] and answer[0]["since"]
    assert api.get(f"/v4/clients/{people['bob'].pk}/segments").json() == []
    assert api.get("/v4/clients/999999/segments").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"name": "x", "filter": {"all": [{"tag": "VIP"}, {"field": "city", "op": "bigger", "value": 1}]}},
            "filter.all[1].op",
        ),
        ({"name": "x", "filter": {"attribute": "points", "op": "gt", "value": "lots"}}, "filter.value"),
        ({"name": "x", "filter": {"tag": "nobody"}}, "filter.tag"),
        ({"name": "x", "filter": "city = Warsaw"}, "filter"),
        ({"name": "x"}, "filter"),
        ({"filter": {"tag": "VIP"}}, "name"),
        ({"name": 5, "filter": {"tag": "VIP"}}, "name"),
        ({"name": "x", "filter": {"segment": 99999}}, "filter.segment"),
    ],
)
def test_bad_input_is_400_naming_the_path(api, people, body, field):
    response = api.post("/v4/segments", body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()
    assert error["field"] == field
    assert {"status", "error", "message", "path", "timestamp"} <= set(error)
    assert not Segment.objects.exists()


def test_bad_list_segment_parameter(api, people):
    assert api.get("/v4/clients", {"segment": 424242}).json()["field"] == "segment"
    assert api.get("/v4/clients", {"segment": "abc"}).status_code == 400


def test_names_are_unique_case_insensitively(api, people):
    create(api, name="Loyal")
    again = create(api, name="LOYAL")
    assert again.status_code == 409 and again.json()["field"] == "name"


def test_a_cycle_is_refused(api, people):
    first = create(api, name="A", tree={"tag": "VIP"}).json()["id"]
    second = create(api, name="B", tree={"segment": first}).json()["id"]
    response = api.put(f"/v4/segments/{first}", {"name": "A", "filter": {"any": [{"segment": second}]}}, format="json")
    assert response.status_code == 400 and response.json()["field"] == "filter.any[0].segment"
    assert response.json()["code"] == "segment.cycle"
    itself = api.put(f"/v4/segments/{first}", {"name": "A", "filter": {"segment": first}}, format="json")
    assert itself.status_code == 400


def test_deleting_a_segment_in_use_is_409_naming_the_users(api, people):
    used = create(api, name="Base", tree={"tag": "VIP"}).json()["id"]
    user = create(api, name="Uses base", tree={"all": [{"segment": used}, {"field": "city", "op": "exists"}]}).json()
    response = api.delete(f"/v4/segments/{used}")
    assert response.status_code == 409
    assert response.json()["usedBy"] == [f"segment {user['id']} 'Uses base'"]
    assert "Uses base" in response.json()["message"]
    assert Segment.objects.filter(pk=used).exists()
    api.delete(f"/v4/segments/{user['id']}")
    assert api.delete(f"/v4/segments/{used}").status_code == 204


def test_other_features_plug_into_the_users_registry(db):
    segment = Segment.objects.create(name="S", tree={"all": []})
    register_segment_user("tests", lambda sid: [f"export {sid}"] if sid == segment.pk else [])
    try:
        assert segment_users(segment.pk) == [f"export {segment.pk}"]
    finally:
        from segments import usage

        usage._finders.pop("tests")


def test_scopes(read_key, people, api):
    _, secret = read_key
    reader = APIClient()
    reader.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    sid = create(api).json()["id"]
    assert reader.get(f"/v4/segments/{sid}/count").status_code == 200
    assert reader.post("/v4/segments/preview", {"filter": {"tag": "VIP"}}, format="json").status_code == 200
    assert create(reader, name="no").status_code == 403
    assert reader.delete(f"/v4/segments/{sid}").status_code == 403


def test_membership_rows_follow_writes(api, people, django_capture_on_commit_callbacks):
    sid = create(api).json()["id"]
    from segments.membership import segment_fill

    segment_fill(segment=Segment.objects.get(pk=sid))
    bob = people["bob"]
    with django_capture_on_commit_callbacks(execute=False):
        api.post(f"/v4/clients/{bob.pk}", {"attributes": {"points": 500}}, format="json")
    segments_refresh_touched()
    assert SegmentMembership.objects.filter(segment_id=sid, profile_id=bob.pk).exists()


@pytest.mark.parametrize("value", ["NaN", "Infinity", "1.5", "-3", "99999999999999999999999", "0"])
def test_odd_segment_parameters_are_400(api, people, value):
    response = api.get("/v4/clients", {"segment": value})
    assert response.status_code == 400, response.content
    assert response.json()["field"] == "segment"


def test_exports_read_a_segment_and_hold_it_in_use(api, people, settings):
    from exports.models import ScheduledExport
    from exports.stream import export_queryset

    sid = create(api, name="VIP", tree={"tag": "VIP"}).json()["id"]
    assert set(export_queryset(segment_id=sid).values_list("pk", flat=True)) == {people["ann"].pk, people["cid"].pk}
    assert list(export_queryset(filters="city=Kraków", segment_id=sid).values_list("pk", flat=True)) == [
        people["cid"].pk
    ]
    fields = {f.name for f in ScheduledExport._meta.concrete_fields}
    export = ScheduledExport(name="Nightly VIPs", segment_id=sid, schedule="hourly", http_url="https://example.com/in")
    for name in ("format", "schedule", "target"):
        assert name in fields
    ScheduledExport.objects.bulk_create([export])
    response = api.delete(f"/v4/segments/{sid}")
    assert response.status_code == 409
    assert response.json()["usedBy"] == [f"scheduled export {export.pk} 'Nightly VIPs'"]


def test_a_tag_a_segment_names_cannot_be_deleted_409_naming_the_segment(api, people):
    sid = create(api, name="VIPs", tree={"any": [{"not": {"tag": "vip"}}, {"field": "city", "op": "exists"}]}).json()
    response = api.delete(f"/v4/clients/tags/{people['vip'].pk}")
    assert response.status_code == 409, response.content
    body = response.json()
    assert body["code"] == "tag.in_use" and body["usedBy"] == [f"segment {sid['id']} 'VIPs'"]
    assert Tag.objects.filter(pk=people["vip"].pk).exists()
    assert people["ann"].profile_tags.filter(tag=people["vip"]).exists()  # nothing half-done: still tagged
    api.delete(f"/v4/segments/{sid['id']}")
    assert api.delete(f"/v4/clients/tags/{people['vip'].pk}").status_code == 202
    assert not Tag.objects.filter(pk=people["vip"].pk).exists()


def test_a_tag_a_scheduled_export_filters_on_cannot_be_deleted(api, people, settings):
    from exports.models import ScheduledExport

    ScheduledExport.objects.create(name="Nightly", target="http", http_url="https://example.com/x",
                                   schedule="hourly", filters="city=Warsaw&tags=gold,Vip")  # fmt: skip
    response = api.delete(f"/v4/clients/tags/{people['vip'].pk}")
    assert response.status_code == 409
    assert response.json()["usedBy"] == [f"scheduled export {ScheduledExport.objects.get().pk} 'Nightly'"]
