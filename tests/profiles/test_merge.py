"""Identity resolution merges, the UUID reset, forced merges and undo."""

import pytest

from crm.errors import Conflict, NotFound
from profiles.merge_registry import register_merge_step, registry
from profiles.models import ClientIdAlias, Event, Identifier, MergeRecord, Profile
from profiles.services import ProfileInput, profile_lookup, profile_update, profile_upsert
from profiles.services.merge import profile_merge, profile_unmerge

pytestmark = pytest.mark.django_db

U1 = "00000000-0000-4000-8000-000000000001"
U2 = "00000000-0000-4000-8000-000000000002"
U3 = "00000000-0000-4000-8000-000000000003"


def upsert(fields=None, attributes=None, **identifiers):
    return profile_upsert(
        data=ProfileInput(identifiers=identifiers, fields=fields or {}, attributes=attributes or {}),
        source="tests",
        actor="tests",
    )


def owner(kind, value):
    return Identifier.objects.get(kind=kind, value=value).profile_id


def test_anonymous_profiles_named_together_are_merged_into_the_recognized_one():
    visitor = upsert(uuid=U1, fields={"city": "Gdańsk"}, attributes={"lastPage": "/shoes", "points": 1}).profile
    ann = upsert(email="ann@example.com", fields={"first_name": "Ann"}, attributes={"points": 50}).profile
    result = upsert(email="ann@example.com", uuid=U1)
    assert result.profile.pk == ann.pk
    assert result.merged_client_ids == [visitor.pk]
    assert not Profile.objects.filter(pk=visitor.pk).exists()
    survivor = Profile.objects.get(pk=ann.pk)
    assert survivor.city == "Gdańsk"  # a gap filled
    assert survivor.first_name == "Ann"
    assert survivor.attributes == {"points": 50, "lastPage": "/shoes"}  # survivor's value kept, gap filled
    assert owner("uuid", U1) == ann.pk
    assert survivor.last_activity_date == max(visitor.last_activity_date, ann.last_activity_date)
    assert profile_lookup(kind="clientId", value=visitor.pk).pk == ann.pk  # old clientId resolves
    record = MergeRecord.objects.get()
    assert (record.survivor_client_id, record.merged_client_id) == (ann.pk, visitor.pk)
    assert record.snapshot["profile"]["city"] == "Gdańsk"


def test_all_anonymous_survivor_is_chosen_by_identifier_priority_then_age():
    by_uuid = upsert(uuid=U1).profile
    by_phone = upsert(phone="+48501234567").profile
    result = upsert(uuid=U1, phone="+48501234567")
    assert result.profile.pk == by_phone.pk  # phone outranks uuid
    assert result.merged_client_ids == [by_uuid.pk]
    older = upsert(uuid=U2).profile
    newer = upsert(uuid=U3).profile
    assert upsert(uuid=U3, phone="+48501234568").profile.pk == newer.pk
    assert upsert(uuid=U2, phone="+48501234568").profile.pk in {older.pk, newer.pk}
    first, second = upsert(uuid=U2).profile, upsert(uuid=U3).profile
    assert first.pk == second.pk  # merged


def test_profiles_whose_emails_differ_are_never_merged_automatically():
    ann = upsert(email="ann@example.com").profile
    bob = upsert(email="bob@example.com", customId="BOB", uuid=U1).profile
    with pytest.raises(Conflict) as error:
        upsert(email="ann@example.com", customId="BOB")
    assert error.value.details["clientIds"] == sorted([ann.pk, bob.pk])
    assert error.value.details["kind"] == "email"
    assert error.value.details["values"] == {str(ann.pk): ["ann@example.com"], str(bob.pk): ["bob@example.com"]}
    assert "'ann@example.com'" in error.value.message and "'bob@example.com'" in error.value.message
    assert Profile.objects.count() == 2
    assert not MergeRecord.objects.exists()


def test_recognized_profiles_that_do_not_contradict_are_merged():
    """A profile known by its customId and another known by its e-mail are one person when a write says so."""
    by_email = upsert(email="c-4@example.com").profile
    by_custom_id = upsert(customId="cid-4").profile
    result = upsert(email="c-4@example.com", customId="cid-4", phone="+48501000004")
    # Only the e-mail makes a profile recognized by default: that profile survives.
    assert (result.profile.pk, result.merged_client_ids) == (by_email.pk, [by_custom_id.pk])
    survivor = Profile.objects.get()
    assert (survivor.email, survivor.custom_id, survivor.phone) == ("c-4@example.com", "cid-4", "+48501000004")
    record = MergeRecord.objects.get()
    assert {(link["kind"], link["value"], link["clientId"]) for link in record.reason["links"]} == {
        ("email", "c-4@example.com", by_email.pk),
        ("customId", "cid-4", by_custom_id.pk),
    }
    assert record.reason["write"] == {"source": "tests", "actor": "tests", "requestId": None, "forced": False}


def test_a_profile_over_the_limit_after_a_forced_merge_keeps_its_values_and_still_merges():
    ann = upsert(email="ann@example.com").profile
    other = upsert(email="ann@work.example").profile
    profile_merge(survivor=ann, others=[other], source="tests", actor="tests", forced=True)
    visitor = upsert(uuid=U1).profile
    # The visitor adds no e-mail, so merging it into the two-e-mail profile breaks no limit.
    result = upsert(email="ann@work.example", uuid=U1)
    assert result.profile.pk == ann.pk and result.merged_client_ids == [visitor.pk]
    assert set(Identifier.objects.filter(profile=ann, kind="email").values_list("value", flat=True)) == {
        "ann@example.com",
        "ann@work.example",
    }


def test_phones_are_unlimited_and_the_newest_is_the_main_one():
    profile = upsert(email="ann@example.com", phone="+48501000001").profile
    upsert(email="ann@example.com", phone="+48501000002")
    profile.refresh_from_db()
    assert profile.phone == "+48501000002"
    assert set(Identifier.objects.filter(profile=profile, kind="phone").values_list("value", flat=True)) == {
        "+48501000001",
        "+48501000002",
    }
    # Two profiles with a phone each merge: phones are not limited.
    other = upsert(phone="+48501000003", customId="C-9").profile
    assert upsert(email="ann@example.com", customId="C-9").merged_client_ids == [other.pk]


def test_a_limit_above_one_lets_profiles_with_that_many_values_merge(settings):
    settings.IDENTIFIER_LIMITS = {**settings.IDENTIFIER_LIMITS, "email": 2}
    ann = upsert(email="ann@example.com", customId="A").profile
    upsert(email="ann@work.example")
    result = upsert(email="ann@work.example", customId="A")
    assert result.profile.pk == ann.pk and len(result.merged_client_ids) == 1
    third = upsert(email="ann@third.example").profile
    with pytest.raises(Conflict):
        upsert(email="ann@third.example", customId="A")
    assert Profile.objects.filter(pk=third.pk).exists()


def test_uuid_reset_moves_a_shared_device_to_the_new_person():
    ann = upsert(email="ann@example.com", uuid=U1).profile
    result = upsert(email="bob@example.com", uuid=U1)
    assert result.created is True
    assert result.profile.pk != ann.pk
    assert owner("uuid", U1) == result.profile.pk
    assert Profile.objects.get(pk=ann.pk).email == "ann@example.com"
    assert upsert(email="ann@example.com", uuid=U1).profile.pk == ann.pk  # and back again


def test_uuid_of_a_recognized_profile_with_its_own_email_is_no_reset():
    ann = upsert(email="ann@example.com", uuid=U1).profile
    assert upsert(email="ann@example.com", uuid=U1, fields={"city": "Łódź"}).profile.pk == ann.pk
    assert Profile.objects.count() == 1


def test_forced_merge_of_recognized_profiles_and_undo_round_trip():
    ann = upsert(email="ann@example.com", phone="+48501234567", fields={"city": "Warsaw"}).profile
    bob = upsert(
        email="bob@example.com", customId="BOB", uuid=U1, fields={"company": "Bob & Co"}, attributes={"tier": "gold"}
    ).profile
    bob_uuid_main = Profile.objects.get(pk=bob.pk).uuid
    survivor = profile_merge(survivor=ann, others=[bob], source="tests", forced=True)
    assert survivor.email == "ann@example.com"
    assert survivor.custom_id == "BOB"  # gap filled
    assert survivor.company == "Bob & Co"
    assert owner("email", "bob@example.com") == ann.pk  # secondary e-mail
    assert profile_lookup(kind="email", value="bob@example.com").pk == ann.pk
    # a write naming the secondary e-mail updates the survivor without replacing its main e-mail
    upsert(email="bob@example.com", fields={"last_name": "Nowak"})
    assert Profile.objects.get(pk=ann.pk).email == "ann@example.com"

    result = profile_unmerge(profile=ann, previous_client_id=bob.pk, source="tests")
    restored = Profile.objects.get(pk=bob.pk)
    assert (restored.email, restored.custom_id, restored.uuid, restored.company) == (
        "bob@example.com",
        "BOB",
        bob_uuid_main,
        "Bob & Co",
    )
    assert restored.attributes == {"tier": "gold"}
    assert set(Identifier.objects.filter(profile=restored).values_list("kind", "value")) == {
        ("email", "bob@example.com"),
        ("customId", "BOB"),
        ("uuid", U1),
        ("uuid", bob_uuid_main),
    }
    survivor = Profile.objects.get(pk=ann.pk)
    assert (survivor.custom_id, survivor.company, survivor.last_name) == (None, None, "Nowak")
    assert survivor.attributes == {}
    assert not ClientIdAlias.objects.exists()
    assert result.notes == []
    assert MergeRecord.objects.get().undone_at is not None
    merged_event = Event.objects.get(profile_id=ann.pk, action="profile.merged")
    assert merged_event.is_system
    assert merged_event.params["mergedClientId"] == bob.pk
    assert merged_event.params["snapshot"]["profile"]["email"] == "bob@example.com"
    assert Event.objects.filter(profile_id=ann.pk, action="profile.unmerged").count() == 1
    with pytest.raises(NotFound):
        profile_unmerge(profile=ann, previous_client_id=bob.pk, source="tests")


def test_undo_after_later_writes_restores_what_it_can_and_says_what_not():
    visitor = upsert(uuid=U1, fields={"city": "Gdańsk"}).profile
    ann = upsert(email="ann@example.com").profile
    upsert(email="ann@example.com", uuid=U1)
    profile_update(profile=ann, data=ProfileInput(fields={"city": "Kraków"}), source="tests")  # builds on the merge
    upsert(email="bob@example.com", uuid=U1)  # the uuid moved on (UUID reset)
    result = profile_unmerge(profile=ann, previous_client_id=visitor.pk, source="tests")
    assert any("city" in note for note in result.notes)
    assert any(U1 in note for note in result.notes)
    restored = Profile.objects.get(pk=visitor.pk)
    assert restored.city == "Gdańsk"
    assert restored.uuid != U1  # it keeps a uuid of its own
    assert Identifier.objects.filter(profile=restored, kind="uuid").count() == 1
    assert Profile.objects.get(pk=ann.pk).city == "Kraków"


def test_chained_merges_resolve_and_undo_through_the_chain():
    a = upsert(uuid=U1).profile
    b = upsert(uuid=U2).profile
    c = upsert(email="c@example.com").profile
    upsert(uuid=U2, phone="+48501234567")  # b gains a phone
    profile_merge(survivor=b, others=[a], source="tests")
    profile_merge(survivor=c, others=[b], source="tests")
    assert profile_lookup(kind="clientId", value=a.pk).pk == c.pk
    assert sorted(ClientIdAlias.objects.filter(profile=c).values_list("old_client_id", flat=True)) == sorted(
        [a.pk, b.pk]
    )
    profile_unmerge(profile=c, previous_client_id=b.pk, source="tests")
    assert profile_lookup(kind="clientId", value=a.pk).pk == b.pk  # a's alias went back with b
    assert owner("uuid", U2) == b.pk
    profile_unmerge(profile=b, previous_client_id=a.pk, source="tests")
    assert owner("uuid", U1) == a.pk


def test_registered_steps_run_and_undo():
    calls = []

    def merge(ctx):
        calls.append(("merge", ctx.survivor.pk, ctx.merged.pk))
        return {"moved": [1, 2]}

    def unmerge(ctx):
        calls.append(("unmerge", ctx.survivor.pk, ctx.restored.pk, ctx.data))
        return ["step note"]

    saved = dict(registry.steps)
    register_merge_step("test-step", merge=merge, unmerge=unmerge)
    try:
        a, b = upsert(uuid=U1).profile, upsert(uuid=U2).profile
        profile_merge(survivor=a, others=[b], source="tests")
        result = profile_unmerge(profile=a, previous_client_id=b.pk, source="tests")
    finally:
        registry.steps = saved
    assert calls == [("merge", a.pk, b.pk), ("unmerge", a.pk, b.pk, {"moved": [1, 2]})]
    assert "step note" in result.notes


def test_merge_refuses_to_drop_rows_no_step_moves():
    """A table hanging off Profile without a merge step would lose rows: the merge refuses instead."""
    from consents.models import Agreement, ConsentState

    saved = dict(registry.steps)
    registry.steps = {k: v for k, v in saved.items() if k != "consents"}
    try:
        a, b = upsert(uuid=U1).profile, upsert(uuid=U2).profile
        ConsentState.objects.create(
            profile=b,
            agreement=Agreement.objects.get(key="email"),
            status="granted",
            changed_at=b.created_at,
            source="t",
        )
        with pytest.raises(RuntimeError, match="ConsentState"):
            profile_merge(survivor=a, others=[b], source="tests")
    finally:
        registry.steps = saved
    assert Profile.objects.filter(pk=b.pk).exists()
