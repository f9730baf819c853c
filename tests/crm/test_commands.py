"""The management commands the README and docs/operations.md name."""

from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db.models import Count
from django.test import RequestFactory
from django.utils import timezone

from crm.models import ApiKey
from profiles.models import AttributeDefinition, Profile

pytestmark = pytest.mark.django_db


def test_create_api_key_prints_the_secret_once_and_stores_a_hash(client):
    out, err = StringIO(), StringIO()
    call_command("create_api_key", "--name", "shop", "--scopes", "read,write", stdout=out, stderr=err)
    secret = out.getvalue().strip()
    key = ApiKey.objects.get(name="shop")
    assert key.scopes == ["read", "write"]
    assert secret.startswith(f"crm_{key.prefix}_")
    assert secret not in key.secret_hash
    assert "cannot be shown again" in err.getvalue()
    assert client.get("/v4/clients", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200


def test_create_api_key_refuses_unknown_scopes():
    with pytest.raises(CommandError, match="Scopes"):
        call_command("create_api_key", "--name", "x", "--scopes", "read,delete", stdout=StringIO(), stderr=StringIO())
    assert not ApiKey.objects.exists()


def test_load_demo_data_creates_realistic_profiles_through_the_services():
    call_command("load_demo_data", "--profiles", "40", stdout=StringIO())
    assert Profile.objects.count() == 40
    recognized = Profile.objects.recognized()
    assert 20 <= recognized.count() <= 40
    assert all(p.first_name and p.email for p in recognized)
    assert set(AttributeDefinition.objects.values_list("name", flat=True)) >= {"loyaltyPoints", "clubMember"}
    call_command("load_demo_data", "--profiles", "40", "--if-empty", stdout=StringIO())
    assert Profile.objects.count() == 40


def test_demo_data_is_a_shop_with_activity_orders_tags_consents_notes_and_merges():
    from consents.models import ConsentRecord
    from profiles.models import Event, MergeRecord, ProfileTag, Transaction

    out = StringIO()
    call_command("load_demo_data", "--profiles", "60", stdout=out)
    assert "Showcase profile: clientId" in out.getvalue()
    now = timezone.now()
    custom = Event.objects.filter(is_system=False)
    assert set(custom.values_list("action", flat=True)) >= {"page.visit", "product.view", "transaction.charge"}
    oldest, newest = custom.order_by("time").first().time, custom.order_by("-time").first().time
    assert now - oldest > timedelta(weeks=16) and now - newest < timedelta(weeks=4) and newest <= now
    statuses = set(Transaction.objects.values_list("status", flat=True))
    assert statuses == {"completed", "returned"}
    assert ProfileTag.objects.values("tag").distinct().count() >= 4
    # Consent history: some agreement has more than one ledger record for a profile.
    assert ConsentRecord.objects.values("client_id", "agreement").annotate(n=Count("id")).filter(n__gt=1).exists()
    assert Event.objects.filter(action="note.added").exists()
    assert MergeRecord.objects.exists()
    # No attribute contradicts the commerce figures (they come from the orders).
    assert not AttributeDefinition.objects.filter(name="lastOrderDate").exists()

    showcase = Profile.objects.order_by("pk").first()
    assert showcase.email and showcase.tags.exists() and showcase.consents.count() >= 2
    assert showcase.events.filter(is_system=False).count() >= 20
    assert Transaction.objects.filter(profile=showcase).count() >= 3
    assert MergeRecord.objects.filter(survivor_client_id=showcase.pk).exists()
    assert showcase.last_activity_date and now - showcase.last_activity_date < timedelta(days=30)


def test_ensure_admin_prints_a_working_login(client, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    out = StringIO()
    call_command("ensure_admin", stdout=out)
    username, password = out.getvalue().strip().removeprefix("Admin login: ").split(" / ")
    assert client.login(request=RequestFactory().post("/admin/login/"), username=username, password=password)
    again = StringIO()
    call_command("ensure_admin", stdout=again)
    assert again.getvalue() == out.getvalue()  # the same login, not a new password each run
    assert get_user_model().objects.filter(username="admin", is_superuser=True).count() == 1


def test_demo_data_has_an_example_of_each_part_and_the_tracker_demo_works_at_once():
    from django.test import Client

    from exports.models import ScheduledExport
    from imports.mapping import mapping_compile
    from imports.models import SavedMapping
    from profiles.models import Event
    from tracker.models import Site
    from webhooks.models import Subscription

    out = StringIO()
    call_command("load_demo_data", "--profiles", "5", "--tracker-origin", "http://127.0.0.1:8765", stdout=out)
    site = Site.objects.get()
    assert site.active and site.allowed_origins == ["http://127.0.0.1:8765", "http://localhost:8765"]
    assert "try /tracker/demo/" in out.getvalue()
    mapping = SavedMapping.objects.get()
    assert mapping.format == "csv" and mapping_compile(mapping.mapping)
    export = ScheduledExport.objects.get()
    assert not export.is_active and export.next_run_at is None and export.http_secret.startswith("whsec_")
    subscription = Subscription.objects.get()
    assert not subscription.enabled and subscription.events

    # The demo page on the served address finds the site, and a visit sent from it lands on a profile.
    page = Client(HTTP_HOST="localhost:8765").get("/tracker/demo/")
    assert page.status_code == 200 and page.context["site"] == site and page.context["allowed"]
    browser = Client(HTTP_ORIGIN="http://localhost:8765")
    body = {"siteKey": site.key, "type": "page.visit", "url": "http://localhost:8765/tracker/demo/", "title": "Demo"}
    assert browser.post("/t/collect", body, content_type="application/json").status_code == 204
    visit = Event.objects.get(action="page.visit", params__url="http://localhost:8765/tracker/demo/")
    assert Profile.objects.filter(pk=visit.profile_id).exists()

    # Loading more demo data later makes no second example of anything.
    call_command("load_demo_data", "--profiles", "2", stdout=StringIO())
    assert (Site.objects.count(), SavedMapping.objects.count(), ScheduledExport.objects.count()) == (1, 1, 1)
    assert Subscription.objects.count() == 1
