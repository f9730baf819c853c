"""The registry of Profile's native fields: every column of the model is in it, and every list built from it
(COPY columns, the merge snapshot, the API document, the admin form) follows the model."""

import pytest

from api.synerise.requests import FIELD_KEYS, ProfileWriteSerializer
from profiles.admin.forms import ProfileForm
from profiles.documents import profile_document
from profiles.fields import (
    ALL_COLUMNS,
    EDITABLE_API_NAMES,
    EDITABLE_COLUMNS,
    IDENTIFIER_COLUMNS,
    SYSTEM_COLUMNS,
    api_name,
    column_name,
)
from profiles.models import Profile
from profiles.services.batch import COLUMNS
from profiles.services.merge import STATE_FIELDS


def test_every_model_column_is_in_exactly_one_group():
    model = [f.column for f in Profile._meta.concrete_fields]
    assert list(ALL_COLUMNS) == model
    groups = [set(IDENTIFIER_COLUMNS.values()), set(SYSTEM_COLUMNS), set(EDITABLE_COLUMNS)]
    assert set().union(*groups) | {"id"} == set(model)
    assert sum(len(g) for g in groups) + 1 == len(model)


def test_the_lists_built_from_the_registry_cover_every_column():
    model = {f.column for f in Profile._meta.concrete_fields}
    assert set(COLUMNS) == model  # the batch's COPY writes every column
    assert set(STATE_FIELDS) == model - {"id", "updated_at"}  # a merge snapshot restores every column
    assert set(FIELD_KEYS.values()) == set(EDITABLE_COLUMNS)  # the API accepts every editable field
    assert set(FIELD_KEYS) <= set(ProfileWriteSerializer().fields)  # and documents it
    assert set(ProfileForm._meta.fields) == set(EDITABLE_COLUMNS)  # and so does the admin form


@pytest.mark.django_db
def test_the_api_document_shows_every_editable_field(make_profile):
    profile = make_profile(email="ann@example.com")
    document = profile_document(profile, agreements={})
    assert set(EDITABLE_API_NAMES.values()) <= set(document)


def test_api_names_round_trip():
    for column in EDITABLE_COLUMNS:
        assert column_name(api_name(column)) == column
    assert api_name("zip_code") == "zipCode" and column_name("countryCode") == "country_code"
