"""Custom attributes and their definitions."""

import pytest

from crm.errors import ValidationFailed
from profiles.models import AttributeDefinition, Profile
from profiles.services import ProfileInput, attribute_definition_create, profile_update, profile_upsert

pytestmark = pytest.mark.django_db


def upsert(email="ann@example.com", **attributes):
    return profile_upsert(
        data=ProfileInput(identifiers={"email": email}, attributes=attributes), source="tests", actor="tests"
    ).profile


@pytest.mark.parametrize(
    ("value", "type_", "stored"),
    [
        ("gold", "string", "gold"),
        (42, "number", 42),
        (4.5, "number", 4.5),
        (True, "boolean", True),
        ("2024-02-29", "date", "2024-02-29"),
        ("2024-02-29T10:15:00+02:00", "datetime", "2024-02-29T08:15:00Z"),
        (["a", "b"], "list", ["a", "b"]),
    ],
)
def test_definition_created_on_first_use_with_inferred_type(value, type_, stored):
    profile = upsert(favourite=value)
    definition = AttributeDefinition.objects.get(name="favourite")
    assert definition.type == type_
    assert definition.created_by == "tests"
    assert Profile.objects.get(pk=profile.pk).attributes == {"favourite": stored}


@pytest.mark.parametrize(
    ("first", "second"),
    [(42, "42"), ("text", 1), (True, "true"), ("2024-01-01", "yesterday"), (["a"], "a"), (3, True)],
)
def test_type_mismatch_is_rejected_naming_the_attribute(first, second):
    profile = upsert(score=first)
    with pytest.raises(ValidationFailed) as error:
        upsert(score=second)
    assert error.value.field == "attributes.score"
    assert "score" in error.value.message
    assert Profile.objects.get(pk=profile.pk).attributes["score"] == first


@pytest.mark.parametrize("spelling", ["club_member", "clubmember", "CLUB-MEMBER", "club member", "Club.Member"])
def test_near_duplicate_spelling_is_rejected_naming_the_existing_one(spelling):
    upsert(ClubMember=True)
    with pytest.raises(ValidationFailed) as error:
        upsert(email="bob@example.com", **{spelling: True})
    assert error.value.details["existing"] == "ClubMember"
    assert "'ClubMember'" in error.value.message
    assert not Profile.objects.filter(email="bob@example.com").exists()
    assert list(AttributeDefinition.objects.values_list("name", flat=True)) == ["ClubMember"]


def test_two_spellings_in_one_write_are_rejected():
    with pytest.raises(ValidationFailed) as error:
        upsert(ClubMember=True, club_member=False)
    assert error.value.code == "attribute.near_duplicate"
    assert not AttributeDefinition.objects.exists()


@pytest.mark.parametrize(
    "name", ["firstName", "first_name", "email", "eventCreateTime", "correlationId", "clientId", "agreements", "tags"]
)
def test_reserved_names_are_rejected(name):
    data = ProfileInput(identifiers={"email": "ann@example.com"}, attributes={name: "x"})
    with pytest.raises(ValidationFailed) as error:
        profile_upsert(data=data, source="tests")
    assert error.value.code == "attribute.reserved"
    assert not Profile.objects.exists()


def test_null_deletes_a_custom_attribute():
    profile = upsert(tier="gold", points=10)
    profile_update(profile=profile, data=ProfileInput(attributes={"tier": None}), source="tests")
    assert Profile.objects.get(pk=profile.pk).attributes == {"points": 10}


def test_null_for_an_unknown_attribute_changes_nothing():
    profile = upsert(tier="gold")
    result = profile_update(profile=profile, data=ProfileInput(attributes={"neverSeen": None}), source="tests")
    assert result.changes == {}
    assert not AttributeDefinition.objects.filter(name="neverSeen").exists()


@pytest.mark.parametrize("empty", ["", "   "])
def test_empty_strings_are_rejected(empty):
    profile = upsert(tier="gold")
    with pytest.raises(ValidationFailed) as error:
        profile_update(profile=profile, data=ProfileInput(attributes={"tier": empty}), source="tests")
    assert error.value.field == "attributes.tier"
    assert Profile.objects.get(pk=profile.pk).attributes == {"tier": "gold"}


def test_objects_are_not_attribute_values():
    with pytest.raises(ValidationFailed) as error:
        upsert(address_parts={"street": "x"})
    assert error.value.code == "attribute.type_unsupported"


def test_definition_created_in_admin_ahead_of_use_fixes_the_type():
    attribute_definition_create(name="loyaltyTier", type="string", description="Tier name")
    with pytest.raises(ValidationFailed):
        upsert(loyaltyTier=3)
    assert upsert(loyaltyTier="3").attributes == {"loyaltyTier": "3"}


def test_defining_a_near_duplicate_ahead_is_rejected():
    attribute_definition_create(name="ClubMember", type="boolean")
    with pytest.raises(ValidationFailed) as error:
        attribute_definition_create(name="club_member", type="boolean")
    assert error.value.details["existing"] == "ClubMember"


def test_a_failed_write_creates_no_definition():
    with pytest.raises(ValidationFailed):
        upsert(newOne="x", firstName="y")
    assert not AttributeDefinition.objects.exists()
