"""The admin's delete is erasure too: the list's bulk action and the card's confirmation count what goes."""

import pytest
from django.urls import reverse

from privacy.models import Erasure
from profiles.models import Profile

pytestmark = pytest.mark.django_db


def test_bulk_delete_erases_each_profile_after_a_confirmation_that_counts(admin_client, make_profile, admin_user):
    a = make_profile(email="a@example.com", attributes={"shoeSize": 40})
    b = make_profile(email="b@example.com")
    url = reverse("admin:profiles_profile_changelist")
    page = admin_client.post(url, {"action": "delete_selected", "_selected_action": [a.pk, b.pk]})
    text = page.content.decode()
    assert "Erase the selected profiles?" in text and "410 Gone" in text
    assert "Profiles: 2" in text and "Identifiers: 4" in text and "Custom attributes: 1" in text
    response = admin_client.post(url, {"action": "delete_selected", "_selected_action": [a.pk, b.pk], "post": "yes"})
    assert response.status_code == 302
    assert not Profile.objects.filter(pk__in=[a.pk, b.pk]).exists()
    assert sorted(Erasure.objects.values_list("client_id", "actor")) == [
        (a.pk, f"user:{admin_user.username}"),
        (b.pk, f"user:{admin_user.username}"),
    ]


def test_the_confirmation_does_not_load_every_event(admin_client, make_profile, django_assert_max_num_queries):
    from tests.profiles.test_admin_card import insert_events

    profile = make_profile(email="busy@example.com")
    insert_events(profile, 500)
    with django_assert_max_num_queries(25):
        page = admin_client.get(reverse("admin:profiles_profile_delete", args=[profile.pk]))
    assert page.status_code == 200
    assert "<li>Events: 501</li>" in page.content.decode()  # 500 and profile.created: counted, not listed


def test_the_card_download_is_the_api_document(admin_client, make_profile):
    profile = make_profile(email="dl@example.com", first_name="Dora")
    response = admin_client.get(reverse("admin:profiles_profile_card_download", args=[profile.pk]))
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="profile-{profile.pk}.json"'
    document = response.json()
    assert document["clientId"] == profile.pk and document["profile"]["first_name"] == "Dora"
    assert admin_client.post(reverse("admin:profiles_profile_card_download", args=[profile.pk])).status_code == 405
