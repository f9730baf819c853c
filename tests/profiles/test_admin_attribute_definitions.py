import pytest
from django.urls import reverse

from profiles.models import AttributeDefinition
from profiles.services import attribute_definition_create

LIST_URL = reverse("admin:profiles_attributedefinition_changelist")
ADD_URL = reverse("admin:profiles_attributedefinition_add")


def add(admin_client, **data):
    return admin_client.post(ADD_URL, {"description": "", **data, "_save": "Save"})


def test_creating_a_definition_goes_through_the_service(admin_client):
    response = add(admin_client, name="ClubMember", type="boolean", description="In the loyalty club")

    assert response.status_code == 302
    definition = AttributeDefinition.objects.get()
    assert (definition.name, definition.key, definition.type) == ("ClubMember", "clubmember", "boolean")
    assert definition.description == "In the loyalty club"
    assert definition.created_by == "user:admin"


@pytest.mark.parametrize("spelling", ["club_member", "clubmember", "Club-Member", "ClubMember"])
def test_near_duplicate_spellings_are_refused_naming_the_existing_one(admin_client, spelling):
    attribute_definition_create(name="ClubMember", type="boolean")

    response = add(admin_client, name=spelling, type="string")

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["name"]
    assert "An attribute 'ClubMember' already exists" in errors["name"][0]
    assert list(AttributeDefinition.objects.values_list("name", flat=True)) == ["ClubMember"]


@pytest.mark.parametrize(
    ("name", "reserved"), [("email", "email"), ("first_name", "firstName"), ("Created-At", "createdAt")]
)
def test_reserved_names_are_refused(admin_client, name, reserved):
    response = add(admin_client, name=name, type="string")

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert f"('{reserved}' is a native or system field)" in errors["name"][0]
    assert not AttributeDefinition.objects.exists()


def test_list_shows_how_many_profiles_use_each_attribute(admin_client, make_profile, django_assert_max_num_queries):
    make_profile(attributes={"ClubMember": True, "shoeSize": 42})
    make_profile(attributes={"ClubMember": False})
    make_profile(attributes={"favouriteColour": "green"})
    attribute_definition_create(name="unused", type="number")

    with django_assert_max_num_queries(6):  # session, user, two counts, rows, and one usage aggregate for the page
        response = admin_client.get(LIST_URL)

    assert response.status_code == 200
    usage = {d.name: d._usage_count for d in response.context["cl"].result_list}
    assert usage == {"ClubMember": 2, "favouriteColour": 1, "shoeSize": 1, "unused": 0}
    assert '<td class="field-usage_count">2</td>' in response.text


def test_name_and_type_are_read_only_once_created_description_is_not(admin_client, make_profile):
    make_profile(attributes={"shoeSize": 42})
    definition = AttributeDefinition.objects.get(name="shoeSize")
    url = reverse("admin:profiles_attributedefinition_change", args=[definition.pk])

    page = admin_client.get(url)
    response = admin_client.post(
        url, {"name": "shoe_size", "type": "string", "description": "EU sizes", "_save": "Save"}
    )

    assert set(page.context["adminform"].form.fields) == {"description"}
    assert "profiles using it" in page.text.lower()
    assert response.status_code == 302
    definition.refresh_from_db()
    assert (definition.name, definition.type, definition.description) == ("shoeSize", "number", "EU sizes")


def test_definitions_cannot_be_deleted_from_the_admin(admin_client):
    definition = attribute_definition_create(name="shoeSize", type="number")

    response = admin_client.post(
        reverse("admin:profiles_attributedefinition_delete", args=[definition.pk]), {"post": "yes"}
    )

    assert response.status_code == 403
    assert AttributeDefinition.objects.filter(pk=definition.pk).exists()
