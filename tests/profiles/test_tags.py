"""Tags: definitions, adding and removing set-based with system events, filters, merge steps."""

import pytest

from crm.errors import Conflict, ValidationFailed
from profiles.filters import ProfileFilterSet
from profiles.merge_registry import MergeContext, UnmergeContext
from profiles.models import Event, Profile, ProfileTag, Tag
from profiles.selectors import tags_for
from profiles.services.tags import (
    tag_create,
    tag_delete,
    tags_add,
    tags_merge_step,
    tags_remove,
    tags_unmerge_step,
)

pytestmark = pytest.mark.django_db


def tag_events(profile, action):
    return list(Event.objects.filter(profile=profile, action=action).values_list("label", flat=True).order_by("id"))


def test_name_is_at_most_20_characters_and_unique_in_any_case():
    tag = tag_create(name=" VIP ", color="#FF0000", description="best")
    assert (tag.name, tag.color) == ("VIP", "#ff0000")
    assert len(tag_create(name="x" * 20).name) == 20
    with pytest.raises(ValidationFailed) as error:
        tag_create(name="x" * 21)
    assert error.value.field == "name"
    with pytest.raises(Conflict) as error:
        tag_create(name="vip")
    assert error.value.field == "name" and "VIP" in error.value.message
    with pytest.raises(ValidationFailed) as error:
        tag_create(name="red", color="red")
    assert error.value.field == "color"
    with pytest.raises(ValidationFailed):
        tag_create(name="   ")
    assert Tag.objects.count() == 2


def test_adding_and_removing_write_events_only_for_real_changes(make_profile):
    ann = make_profile(email="ann@example.com")
    vip, new = tag_create(name="vip"), tag_create(name="new")
    assert tags_add(profiles=[ann], tags=[vip, new], source="api", actor="t") == 2
    assert tags_add(profiles=[ann], tags=[vip], source="api", actor="t") == 0  # already there: nothing
    assert tag_events(ann, "tag.added") == ["vip", "new"]
    assert tags_remove(profiles=[ann], tags=[vip], source="api", actor="t") == 1
    assert tags_remove(profiles=[ann], tags=[vip], source="api", actor="t") == 0
    assert tag_events(ann, "tag.removed") == ["vip"]
    event = Event.objects.get(profile=ann, action="tag.removed")
    assert event.params == {"tagId": vip.pk, "name": "vip"} and event.is_system
    assert tags_for(profile_ids=[ann.pk]) == {ann.pk: ["new"]}


@pytest.mark.parametrize("size", [5, 500])
def test_bulk_tagging_takes_a_fixed_number_of_queries(make_profile, django_assert_num_queries, size):
    ids = list(Profile.objects.bulk_create(Profile(uuid=f"u{i}", correlation_id="c") for i in range(size)))
    vip, new = tag_create(name="vip"), tag_create(name="new")
    # savepoint, INSERT tags RETURNING, the profiles' change time, INSERT events, the webhook subscriptions read,
    # release: whatever the number of profiles
    with django_assert_num_queries(6):
        assert tags_add(profiles=ids, tags=[vip, new], source="import", actor="t") == 2 * size
    assert Event.objects.filter(action="tag.added").count() == 2 * size
    with django_assert_num_queries(6):
        assert tags_remove(profiles=ids, tags=[vip], source="admin", actor="t") == size
    assert Event.objects.filter(action="tag.removed").count() == size


def test_deleting_a_tag_removes_it_from_every_profile_with_events(make_profile):
    ann, bob = make_profile(email="ann@example.com"), make_profile(email="bob@example.com")
    vip = tag_create(name="vip")
    tags_add(profiles=[ann, bob], tags=[vip], source="api")
    assert tag_delete(tag=vip, source="admin", actor="t") == 2
    assert not Tag.objects.exists()
    assert Event.objects.filter(action="tag.removed", label="vip").count() == 2


def test_list_filter_needs_every_named_tag(make_profile):
    ann, bob, cid = (make_profile(email=f"{n}@example.com") for n in ("ann", "bob", "cid"))
    vip, new = tag_create(name="VIP"), tag_create(name="new")
    tags_add(profiles=[ann, bob], tags=[vip], source="t")
    tags_add(profiles=[ann, cid], tags=[new], source="t")

    def ids(query):
        fs = ProfileFilterSet(query, queryset=Profile.objects.all())
        assert fs.is_valid(), fs.errors
        return set(fs.qs.values_list("pk", flat=True))

    assert ids({"tags": "vip"}) == {ann.pk, bob.pk}
    assert ids({"tags": "vip,NEW"}) == {ann.pk}
    with pytest.raises(ValidationFailed) as error:
        ids({"tags": "nope"})
    assert error.value.field == "tags"


def test_merge_step_unions_and_unmerge_restores(make_profile):
    survivor, merged = make_profile(email="ann@example.com"), make_profile(email="bob@example.com")
    a, b, c = (tag_create(name=n) for n in "abc")
    tags_add(profiles=[survivor], tags=[a, b], source="t")
    tags_add(profiles=[merged], tags=[b, c], source="t")
    data = tags_merge_step(ctx=MergeContext(survivor=survivor, merged=merged, source="t", actor="t"))
    assert data == {"tags": sorted([b.pk, c.pk]), "addedToSurvivor": [c.pk]}
    assert tags_for(profile_ids=[survivor.pk, merged.pk]) == {survivor.pk: ["a", "b", "c"], merged.pk: []}
    notes = tags_unmerge_step(ctx=UnmergeContext(survivor=survivor, restored=merged, data=data, source="t", actor="t"))
    assert notes == []
    assert tags_for(profile_ids=[survivor.pk, merged.pk]) == {survivor.pk: ["a", "b"], merged.pk: ["b", "c"]}
    assert ProfileTag.objects.count() == 4
