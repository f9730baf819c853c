"""Profiles and identifiers through the services."""

import threading

import pytest
from django.db import connection

from crm.errors import Conflict, NotFound, ValidationFailed
from privacy.services import profile_erase
from profiles.models import Identifier, Profile
from profiles.services import ProfileInput, profile_lookup, profile_update, profile_upsert

pytestmark = pytest.mark.django_db


def upsert(**identifiers):
    fields = identifiers.pop("fields", {})
    return profile_upsert(data=ProfileInput(identifiers=identifiers, fields=fields), source="tests", actor="tests")


def test_every_profile_gets_a_uuid_and_its_identifiers_are_claimed():
    profile = upsert(email=" Ann@Example.com ", phone="501 234 567").profile
    assert profile.uuid
    assert set(profile.identifiers.values_list("kind", "value")) == {
        ("email", "ann@example.com"),
        ("phone", "+48501234567"),
        ("uuid", profile.uuid),
    }


def test_anonymous_is_derived_from_the_email_and_by_setting_the_custom_id(settings):
    anonymous = upsert(uuid="24f539a0-d257-11ea-92f0-23c0f0aec77f").profile
    assert anonymous.anonymous is True
    by_custom_id = upsert(customId="C-1").profile
    assert by_custom_id.anonymous is True  # the e-mail is the main identifier by default
    settings.CUSTOM_ID_IS_MAIN_IDENTIFIER = True
    assert by_custom_id.anonymous is False
    assert Profile.objects.anonymous().get() == anonymous
    result = upsert(uuid="24f539a0-d257-11ea-92f0-23c0f0aec77f", email="ann@example.com")
    assert result.profile.pk == anonymous.pk
    assert result.profile.anonymous is False
    assert Profile.objects.anonymous().count() == 0


def test_an_existing_identifier_updates_that_profile():
    first = upsert(email="ann@example.com").profile
    second = upsert(email="ANN@example.com", customId="C-7", fields={"city": "Warsaw"})
    assert second.created is False
    assert second.profile.pk == first.pk
    assert Profile.objects.count() == 1
    assert profile_lookup(kind="customId", value=" C-7").city == "Warsaw"


def test_lookup_normalises_like_writes():
    profile = upsert(email="ann@example.com", phone="+48501234567").profile
    assert profile_lookup(kind="email", value="  ANN@example.COM").pk == profile.pk
    assert profile_lookup(kind="phone", value="501 234 567").pk == profile.pk
    assert profile_lookup(kind="uuid", value=profile.uuid.upper()).pk == profile.pk
    with pytest.raises(NotFound):
        profile_lookup(kind="email", value="bob@example.com")
    with pytest.raises(ValidationFailed):
        profile_lookup(kind="email", value="null")


def test_changing_the_email_releases_the_old_one():
    profile = upsert(email="ann@example.com").profile
    profile_update(profile=profile, data=ProfileInput(identifiers={"email": "ann@new.example"}), source="tests")
    assert not Identifier.objects.filter(value="ann@example.com").exists()
    assert upsert(email="ann@example.com").created is True


def test_identifiers_of_two_profiles_are_a_conflict_naming_both():
    ann = upsert(email="ann@example.com").profile
    bob = upsert(customId="BOB", email="bob@example.com").profile
    with pytest.raises(Conflict) as error:
        upsert(email="ann@example.com", customId="BOB", fields={"city": "Paris"})
    assert error.value.details["clientIds"] == sorted([ann.pk, bob.pk])
    assert str(ann.pk) in error.value.message and str(bob.pk) in error.value.message
    assert not Profile.objects.filter(city="Paris").exists()


def test_update_with_another_profiles_identifier_is_a_conflict():
    ann = upsert(email="ann@example.com").profile
    upsert(email="bob@example.com")
    with pytest.raises(Conflict):
        profile_update(profile=ann, data=ProfileInput(identifiers={"email": "bob@example.com"}), source="tests")
    assert Profile.objects.get(pk=ann.pk).email == "ann@example.com"


def test_uuid_cannot_be_removed():
    profile = upsert(email="ann@example.com").profile
    with pytest.raises(ValidationFailed):
        profile_update(profile=profile, data=ProfileInput(identifiers={"uuid": None}), source="tests")


def test_a_second_uuid_is_added_not_replacing_the_first():
    profile = upsert(email="ann@example.com").profile
    other = "9b2b3c4d-0000-4000-8000-000000000001"
    upsert(email="ann@example.com", uuid=other)
    assert profile_lookup(kind="uuid", value=other).pk == profile.pk
    assert profile_lookup(kind="uuid", value=profile.uuid).pk == profile.pk


def test_null_resets_native_fields_to_their_default():
    profile = upsert(email="ann@example.com", fields={"sex": "FEMALE", "city": "Warsaw"}).profile
    profile_update(profile=profile, data=ProfileInput(fields={"sex": None, "city": None}), source="tests")
    profile.refresh_from_db()
    assert (profile.sex, profile.city) == ("NOT_SPECIFIED", None)


def test_no_identifier_is_rejected():
    with pytest.raises(ValidationFailed) as error:
        profile_upsert(data=ProfileInput(fields={"city": "Warsaw"}), source="tests")
    assert error.value.code == "identifier.missing"


def test_delete_removes_profile_and_identifiers():
    profile = upsert(email="ann@example.com").profile
    profile_erase(profile=profile, source="tests")
    assert not Identifier.objects.exists()
    with pytest.raises(NotFound):
        profile_erase(profile=profile, source="tests")


def test_client_ids_are_never_reused():
    first = upsert(email="ann@example.com").profile
    profile_erase(profile=first, source="tests")
    assert upsert(email="ann@example.com").profile.pk > first.pk


@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_of_one_email_make_one_profile():
    barrier = threading.Barrier(8)
    errors: list[Exception] = []

    def create(i):
        try:
            barrier.wait()
            upsert(email="race@example.com", uuid=f"00000000-0000-4000-8000-{i:012d}")
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert Profile.objects.count() == 1
    assert Identifier.objects.filter(kind="uuid").count() == 8


def test_profile_build_makes_the_same_instance_as_the_constructor():
    from profiles.fields import profile_build

    values = {"email": "ann@example.com", "uuid": "00000000-0000-4000-8000-000000000001", "city": "Kraków"}
    built, constructed = profile_build(**values), Profile(**values)
    assert {f.attname: getattr(built, f.attname) for f in Profile._meta.concrete_fields} == {
        f.attname: getattr(constructed, f.attname) for f in Profile._meta.concrete_fields
    }
    assert built.attributes == {} and built.attributes is not profile_build(**values).attributes
    assert built._state.adding and built._state.db is None
    built.correlation_id = "x"
    built.save(force_insert=True)
    assert Profile.objects.get(pk=built.pk).city == "Kraków"
    with pytest.raises(TypeError):
        profile_build(nonsense=1)
