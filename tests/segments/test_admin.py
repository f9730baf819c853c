"""The segments admin: list with counts and build time, the builder's save and live count, the profile list by
segment, the card's right column (segments and expressions), and the Marketers' permissions."""

from __future__ import annotations

import importlib
import json

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, User
from django.urls import reverse

from profiles.models import Tag
from profiles.services.tags import tags_add
from segments.membership import segment_fill
from segments.models import Expression, Segment

roles = importlib.import_module("crm.migrations.0003_roles")
segment_roles = importlib.import_module("segments.migrations.0002_roles")
COUNT_URL = reverse("admin:segments_segment_count")


@pytest.fixture
def marketer_client(client, db):
    roles.create_roles(apps, None)
    segment_roles.grant(apps, None)
    user = User.objects.create_user("mia@example.com", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name="Marketers"))
    client.force_login(user)
    return client


@pytest.fixture
def people(make_profile):
    vip = Tag.objects.create(name="VIP")
    ann = make_profile(email="ann@example.com", city="Kraków", first_name="Ann")
    bob = make_profile(email="bob@example.com", city="Kraków")
    tags_add(profiles=[ann], tags=[vip], source="tests")
    return {"ann": ann, "bob": bob, "vip": vip}


TREE = {"all": [{"field": "city", "op": "eq", "value": "kraków"}, {"tag": "VIP"}]}


def test_marketer_saves_a_segment_through_the_form(marketer_client, people):
    response = marketer_client.post(
        reverse("admin:segments_segment_add"), {"name": "Kraków VIPs", "description": "", "tree": json.dumps(TREE)}
    )
    assert response.status_code == 302, response.content
    segment = Segment.objects.get()
    assert segment.tree == {"all": [{"field": "city", "op": "eq", "value": "kraków"}, {"tagId": people["vip"].pk}]}
    assert segment.created_by == "user:mia@example.com"


def test_a_bad_tree_is_shown_on_the_form_with_its_path(marketer_client, people):
    bad = {"all": [{"field": "city", "op": "eq", "value": "x"}, {"tag": "nobody"}]}
    response = marketer_client.post(reverse("admin:segments_segment_add"), {"name": "x", "tree": json.dumps(bad)})
    assert response.status_code == 200
    assert "filter.all[1].tag" in response.text and not Segment.objects.exists()


def test_live_count_and_preview(marketer_client, people):
    answer = marketer_client.post(COUNT_URL, json.dumps(TREE), content_type="application/json")
    assert answer.status_code == 200
    body = answer.json()
    assert body["count"] == 1 and body["preview"][0]["id"] == people["ann"].pk
    assert body["preview"][0]["url"] == reverse("admin:profiles_profile_change", args=[people["ann"].pk])
    bad = marketer_client.post(COUNT_URL, json.dumps({"all": [{"field": "city"}]}), content_type="application/json")
    assert bad.status_code == 400 and bad.json()["field"] == "filter.all[0].op"
    assert marketer_client.get(COUNT_URL).status_code == 405


def test_list_shows_counts_build_time_and_links_to_profiles(marketer_client, people):
    segment = Segment.objects.create(name="Kraków VIPs", tree=TREE)
    segment_fill(segment=segment)
    page = marketer_client.get(reverse("admin:segments_segment_changelist"))
    assert page.status_code == 200
    assert "Kraków VIPs" in page.text and " ms</td>" in page.text
    assert f"?segment={segment.pk}" in page.text
    listed = marketer_client.get(reverse("admin:profiles_profile_changelist"), {"segment": segment.pk})
    assert [p.pk for p in listed.context["cl"].result_list] == [people["ann"].pk]


def test_builder_page_renders_its_script_and_metadata(marketer_client, people):
    page = marketer_client.get(reverse("admin:segments_segment_add"))
    assert page.status_code == 200
    assert 'src="/static/segments/builder.js"' in page.text
    assert 'id="segment-builder-meta" type="application/json"' in page.text
    assert "<script>" not in page.text.replace('type="application/json"', "")  # nothing inline to run


def test_card_lists_segments_and_expressions(marketer_client, people):
    segment = Segment.objects.create(name="Kraków VIPs", tree=TREE)
    segment_fill(segment=segment)
    Expression.objects.create(name="greeting", label="Greeting", expression='"Hi " + firstName', type="text")
    Expression.objects.create(name="aov", expression="totalSpent / max(totalOrders, 1)", format="decimal")
    card = marketer_client.get(reverse("admin:profiles_profile_change", args=[people["ann"].pk]))
    column = card.text.split('data-column="right"')[1]
    assert "Kraków VIPs" in column and "Hi Ann" in column and "0.00" in column
    other = marketer_client.get(reverse("admin:profiles_profile_change", args=[people["bob"].pk]))
    assert "In no segment." in other.text


def test_deleting_a_used_segment_in_the_admin_names_its_users(marketer_client, people):
    base = Segment.objects.create(name="Base", tree={"tag": "VIP"})
    Segment.objects.create(name="Uses base", tree={"segment": base.pk})
    response = marketer_client.get(reverse("admin:segments_segment_delete", args=[base.pk]), follow=True)
    assert "in use by segment" in response.text and Segment.objects.filter(pk=base.pk).exists()


def test_marketers_may_not_define_expressions(marketer_client):
    assert marketer_client.get(reverse("admin:segments_expression_changelist")).status_code == 200
    assert marketer_client.get(reverse("admin:segments_expression_add")).status_code == 403


@pytest.fixture
def staff_client(client, db):
    user = User.objects.create_superuser("root@example.com", password="pw")
    client.force_login(user)
    return client


def test_the_admin_refuses_to_delete_a_tag_or_segment_in_use(staff_client, people):
    base = Segment.objects.create(name="VIPs", tree={"tagId": people["vip"].pk})
    user = Segment.objects.create(name="Uses VIPs", tree={"all": [{"segment": base.pk}]})
    # One tag: the delete page sends back to the tag with the reason.
    response = staff_client.get(reverse("admin:profiles_tag_delete", args=[people["vip"].pk]), follow=True)
    assert f"in use by segment {base.pk} &#x27;VIPs&#x27;" in response.text
    # "Delete selected" on tags and on segments: listed as protected, and the confirmation deletes nothing.
    for model, pks in (("profiles_tag", [people["vip"].pk]), ("segments_segment", [base.pk, user.pk])):
        url = reverse(f"admin:{model}_changelist")
        data = {"action": "delete_selected", "_selected_action": pks}
        page = staff_client.post(url, data)
        assert page.status_code == 200 and "protected" in page.text
        assert f"segment {user.pk if model == 'segments_segment' else base.pk}" in page.text
        staff_client.post(url, {**data, "post": "yes"})
    assert Tag.objects.filter(pk=people["vip"].pk).exists()
    assert Segment.objects.filter(pk__in=[base.pk, user.pk]).count() == 2
