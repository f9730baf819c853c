"""Sites in the admin: origins normalised and checked, the script tag to paste, Admin staff only."""

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse

from tracker.models import Site

ADD_URL = reverse("admin:tracker_site_add")


def test_origins_are_normalised_and_bad_ones_refused(admin_client):
    response = admin_client.post(
        ADD_URL,
        {
            "name": "Shop",
            "allowed_origins": "HTTPS://Shop.example:443/, http://localhost:8000\nhttps://shop.example",
            "active": "on",
        },
    )
    assert response.status_code == 302, response.content
    assert Site.objects.get().allowed_origins == ["https://shop.example", "http://localhost:8000"]
    for bad in ["https://shop.example/basket", "ftp://shop.example", "https://*.shop.example", "shop.example"]:
        response = admin_client.post(ADD_URL, {"name": "Bad", "allowed_origins": bad})
        assert response.status_code == 200 and response.context["adminform"].form.errors["allowed_origins"], bad
    assert Site.objects.count() == 1


def test_the_change_page_shows_the_tag_with_the_consent_switch(admin_client, settings):
    settings.PUBLIC_BASE_URL = "https://t.shop.example/"
    site = Site.objects.create(name="Careful", allowed_origins=["https://shop.example"], consent_required=True)
    page = admin_client.get(reverse("admin:tracker_site_change", args=[site.pk])).text
    assert (
        f"&lt;script async src=&quot;https://t.shop.example/tracker.js&quot; data-site-key=&quot;{site.key}&quot; "
        "data-require-consent&gt;&lt;/script&gt;"
    ) in page
    assert "crm.q = crm.q || []" in page
    assert f"/tracker/demo/?site={site.key}" in page


@pytest.mark.django_db
def test_marketers_get_no_sites_and_admin_staff_do(client):
    site = Site.objects.create(name="Shop")
    marketer = User.objects.create_user("mia", password="x", is_staff=True)
    marketer.groups.add(Group.objects.get(name="Marketers"))
    client.force_login(marketer)
    assert client.get(reverse("admin:tracker_site_changelist")).status_code == 403
    assert client.get(reverse("admin:tracker_site_change", args=[site.pk])).status_code == 403
    staff = User.objects.create_user("ada", password="x", is_staff=True)
    staff.groups.add(Group.objects.get(name="Admin staff"))  # given the site permissions by the tracker's migration
    client.force_login(staff)
    assert client.get(reverse("admin:tracker_site_changelist")).status_code == 200
    assert client.post(ADD_URL, {"name": "New", "allowed_origins": "https://new.example"}).status_code == 302


@pytest.mark.django_db
def test_the_demo_page_finds_its_site_or_says_how_to_add_one(client):
    page = client.get("/tracker/demo/")
    assert page.status_code == 200 and 'id="demo-missing"' in page.text and "http://testserver" in page.text
    assert "tracker.js" not in page.text
    own = Site.objects.create(name="Own", allowed_origins=["http://testserver"])
    page = client.get("/tracker/demo/").text
    assert f'data-site-key="{own.key}"' in page and "data-require-consent" not in page
    careful = Site.objects.create(name="Careful", allowed_origins=["https://shop.example"], consent_required=True)
    page = client.get(f"/tracker/demo/?site={careful.key}").text
    assert f'data-site-key="{careful.key}" data-require-consent' in page
    assert "is not among its allowed origins" in page
