"""The webhooks admin: Admin staff only; the secret shown once on creation; the message log and resend."""

import importlib

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, User

from webhooks.delivery import deliver_due
from webhooks.models import EventType, Message, Subscription

pytestmark = pytest.mark.django_db
roles = importlib.import_module("crm.migrations.0003_roles")


@pytest.fixture
def groups(db):
    roles.create_roles(apps, None)
    return {g.name: g for g in Group.objects.all()}


def member(groups, name, username):
    user = User.objects.create_user(username, password="pw", is_staff=True)
    user.groups.add(groups[name])
    return user


def test_marketers_get_no_webhook_pages(client, groups):
    client.force_login(member(groups, "Marketers", "mia"))
    assert client.get("/admin/webhooks/subscription/").status_code == 403
    assert client.get("/admin/webhooks/message/").status_code == 403


def test_admin_staff_create_a_subscription_and_see_the_secret_once(client, groups, allow_private, receiver):
    client.force_login(member(groups, "Admin staff", "ada"))
    response = client.post(
        "/admin/webhooks/subscription/add/",
        {"url": receiver.url, "events": ["profile.created", "tag.added"], "ignore_keys": "ab12, cd34", "enabled": "on"},
    )
    assert response.status_code == 200, response.content
    subscription = Subscription.objects.get()
    assert subscription.secret in response.content.decode()
    assert (subscription.events, subscription.ignore_keys) == (["profile.created", "tag.added"], ["ab12", "cd34"])
    page = client.get(f"/admin/webhooks/subscription/{subscription.pk}/change/").content.decode()
    assert subscription.secret not in page


def test_a_refused_target_is_an_error_on_the_url_field(client, groups):
    client.force_login(member(groups, "Admin staff", "ada"))
    data = {"url": "http://127.0.0.1/", "events": ["tag.added"], "enabled": "on"}  # a disabled one is checked later
    response = client.post("/admin/webhooks/subscription/add/", data)
    assert response.status_code == 200
    assert "loopback, private" in response.context["adminform"].form.errors["url"][0]
    assert not Subscription.objects.exists()


def test_a_disabled_subscription_says_why(client, groups, subscribe):
    subscription, _ = subscribe([EventType.TAG_ADDED])
    Subscription.objects.filter(pk=subscription.pk).update(
        enabled=False, disabled_reason="The receiver answered 410 Gone."
    )
    client.force_login(member(groups, "Admin staff", "ada"))
    page = client.get("/admin/webhooks/subscription/").content.decode()
    assert "Disabled" in page and "410 Gone" in page


def test_the_message_log_shows_attempts_and_resends(client, groups, subscribe, receiver, make_profile):
    subscribe([EventType.PROFILE_CREATED])
    make_profile(email="ada@example.com")
    receiver.default = 503
    deliver_due()
    message = Message.objects.get()
    client.force_login(member(groups, "Admin staff", "ada"))
    page = client.get(f"/admin/webhooks/message/{message.pk}/change/").content.decode()
    assert message.webhook_id in page and "503" in page and "answer 503" in page
    response = client.post(
        "/admin/webhooks/message/", {"action": "resend", "_selected_action": [message.pk]}, follow=True
    )
    assert "will be sent again" in response.content.decode()
    message.refresh_from_db()
    assert message.state == "pending"
