"""The profiles list: filters, bulk tag actions, CSV export (its own permission, formula-safe), fixed queries."""

import csv
import io

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from consents.models import Agreement
from consents.services import consent_set
from exports.stream import csv_cell
from profiles.models import Event, Tag
from profiles.services.tags import tag_create, tags_add

LIST_URL = reverse("admin:profiles_profile_changelist")
# Session, user, tag, segment and agreement choices, table estimate, count, page, the page's tags, facet counts.
MAX_LIST_QUERIES = 11  # and the tag filter checks its tag still exists


def listed(response) -> set[int]:
    assert response.status_code == 200
    return {p.pk for p in response.context["cl"].result_list}


@pytest.fixture
def crowd(make_profile):
    ann = make_profile(email="ann@example.com", city="Kraków")
    bob = make_profile(email="bob@example.com", city="Warszawa")
    cid = make_profile(email="cid@example.com", city="kraków")
    vip = tag_create(name="VIP")
    tags_add(profiles=[ann, bob], tags=[vip], source="tests")
    consent_set(profile=ann, agreement=Agreement.objects.get(key="email"), state="granted", source="tests")
    consent_set(profile=bob, agreement=Agreement.objects.get(key="email"), state="denied", source="tests")
    return {"ann": ann, "bob": bob, "cid": cid, "vip": vip}


def test_filters_by_tag_agreement_state_city_and_dates(admin_client, crowd):
    vip = crowd["vip"]
    assert listed(admin_client.get(LIST_URL, {"tag": vip.pk})) == {crowd["ann"].pk, crowd["bob"].pk}
    assert listed(admin_client.get(LIST_URL, {"consent": "email:granted"})) == {crowd["ann"].pk}
    assert listed(admin_client.get(LIST_URL, {"consent": "email:denied"})) == {crowd["bob"].pk}
    assert listed(admin_client.get(LIST_URL, {"consent": "email:none"})) == {crowd["cid"].pk}
    assert listed(admin_client.get(LIST_URL, {"city": "KRAKÓW"})) == {crowd["ann"].pk, crowd["cid"].pk}
    everyone = {p.pk for p in crowd.values() if not isinstance(p, Tag)}
    assert listed(admin_client.get(LIST_URL, {"created_at__gte": "2000-01-01 00:00:00+00:00"})) == everyone
    assert listed(admin_client.get(LIST_URL, {"last_activity_date__isnull": "True"})) <= everyone
    page = admin_client.get(LIST_URL).text
    for title in ("By tag", "By agreement state", "By city", "By created at", "By last activity date"):
        assert title in page, title


def test_list_queries_do_not_grow_with_page_size(admin_client, crowd, make_profile, django_assert_max_num_queries):
    for index in range(60):
        profile = make_profile(email=f"p{index}@example.com")
        tags_add(profiles=[profile], tags=[crowd["vip"]], source="tests")
    for params in ({}, {"tag": crowd["vip"].pk}, {"consent": "email:granted", "city": "Kraków"}):
        with django_assert_max_num_queries(MAX_LIST_QUERIES):
            response = admin_client.get(LIST_URL, params)
        assert response.status_code == 200
    assert 'class="profile-tag">VIP<' in admin_client.get(LIST_URL).text


def post_action(client, action, ids, follow=False, **extra):
    data = {"action": action, "_selected_action": [str(i) for i in ids], "index": 0, **extra}
    return client.post(LIST_URL, data, follow=follow)


def test_bulk_add_and_remove_tag_through_the_service(admin_client, crowd):
    ids = [crowd["ann"].pk, crowd["cid"].pk]
    response = post_action(admin_client, "add_tag", ids, tag="spring-sale")
    assert response.status_code == 302
    tag = Tag.objects.get(name="spring-sale")
    assert set(tag.profiles.values_list("pk", flat=True)) == set(ids)
    assert Event.objects.filter(action="tag.added", label="spring-sale", actor="user:admin").count() == 2
    post_action(admin_client, "remove_tag", [crowd["ann"].pk], tag="Spring-Sale")
    assert list(tag.profiles.values_list("pk", flat=True)) == [crowd["cid"].pk]
    response = post_action(admin_client, "remove_tag", ids, tag="no-such-tag", follow=True)
    assert any("There is no tag" in str(m) for m in response.context["messages"])


def test_export_is_csv_and_formula_safe(admin_client, crowd, make_profile):
    evil = make_profile(email="eve@example.com", first_name="=cmd|' /C calc'!A0", last_name="@SUM(1)")
    response = post_action(admin_client, "export_csv", [evil.pk, crowd["ann"].pk])
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r["clientId"] for r in rows] == sorted([str(evil.pk), str(crowd["ann"].pk)], key=int)
    eve = next(r for r in rows if r["email"] == "eve@example.com")
    assert eve["firstName"] == "'=cmd|' /C calc'!A0" and eve["lastName"] == "'@SUM(1)"
    assert [csv_cell(v) for v in ("+1", "-1", "\tx", "ok", None)] == ["'+1", "'-1", "'\tx", "ok", ""]


def test_export_is_a_permission_of_its_own(client, crowd):
    user = User.objects.create_user("m@example.com", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=["view_profile", "change_profile"]))
    client.force_login(user)
    choices = [value for value, _ in client.get(LIST_URL).context["action_form"].fields["action"].choices]
    assert "export_csv" not in choices and "add_tag" in choices
    response = post_action(client, "export_csv", [crowd["ann"].pk])
    assert response.status_code != 200 or not response.get("Content-Type", "").startswith("text/csv")

    from django.contrib.contenttypes.models import ContentType

    from profiles.models import Profile

    export, _ = Permission.objects.get_or_create(
        codename="export_profile",
        content_type=ContentType.objects.get_for_model(Profile),
        defaults={"name": "Can export profiles"},
    )
    user.user_permissions.add(export)
    user = User.objects.get(pk=user.pk)
    client.force_login(user)
    response = post_action(client, "export_csv", [crowd["ann"].pk])
    assert response["Content-Type"].startswith("text/csv")


def test_export_from_the_card(admin_client, crowd):
    url = reverse("admin:profiles_profile_change", args=[crowd["ann"].pk])
    assert "Export as CSV" in admin_client.get(url).text
    response = admin_client.post(
        url, {"CHANGE_FORM-action": "export_csv", "_selected_action": str(crowd["ann"].pk), "index": 0}
    )
    assert response["Content-Type"].startswith("text/csv")
