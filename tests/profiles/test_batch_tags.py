"""The batch input's tags: set-based, created when missing, matched case-insensitively, only new pairs recorded."""

import pytest

from profiles.models import Event, Tag
from profiles.services import ProfileInput
from profiles.services.batch import profile_input_from_json, profile_input_to_json, profiles_upsert_many
from profiles.services.tags import tag_create

pytestmark = pytest.mark.django_db


def item(email, *tags, **fields):
    return ProfileInput(identifiers={"email": email}, fields=fields, tags=list(tags))


def test_tags_are_created_when_missing_and_matched_case_insensitively():
    existing = tag_create(name="VIP")
    results = profiles_upsert_many(
        items=[item("a@example.com", "vip", "newsletter"), item("b@example.com", "Newsletter")], source="tests"
    )
    assert [r.status for r in results] == ["created", "created"]
    assert sorted(Tag.objects.values_list("name", flat=True)) == ["VIP", "newsletter"]
    a = results[0].client_id
    assert sorted(t.pk for t in Tag.objects.filter(profiles=a)) == sorted(
        [existing.pk, Tag.objects.get(name="newsletter").pk]
    )
    assert Event.objects.filter(action="tag.added").count() == 3


def test_a_new_tag_alone_is_an_update_and_a_repeat_changes_nothing():
    profiles_upsert_many(items=[item("a@example.com", "vip")], source="tests")
    events = Event.objects.count()
    (again,) = profiles_upsert_many(items=[item("a@example.com", "VIP")], source="tests")
    assert again.status == "unchanged" and Event.objects.count() == events
    (more,) = profiles_upsert_many(items=[item("a@example.com", "vip", "gold")], source="tests")
    assert more.status == "updated"
    assert Event.objects.filter(action="tag.added").count() == 2


def test_a_bad_tag_name_fails_its_item_only():
    results = profiles_upsert_many(items=[item("a@example.com", "x" * 21), item("b@example.com", "ok")], source="tests")
    assert results[0].status == "failed" and results[0].error["field"] == "tags[0]"
    assert results[1].status == "created"


def test_tags_take_the_single_path_too():
    profiles_upsert_many(items=[item("a@example.com"), ProfileInput(identifiers={"customId": "C1"})], source="tests")
    # names two profiles: merged on the single-write path, which puts the tags as well
    (merged,) = profiles_upsert_many(
        items=[ProfileInput(identifiers={"email": "a@example.com", "customId": "C1"}, tags=["merged"])], source="tests"
    )
    assert merged.status == "merged"
    assert list(Tag.objects.get(name="merged").profiles.values_list("pk", flat=True)) == [merged.client_id]


def test_batch_jobs_keep_tags():
    data = item("a@example.com", "vip")
    assert profile_input_from_json(entry=profile_input_to_json(data=data)).tags == ["vip"]
