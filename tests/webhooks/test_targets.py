"""SSRF: loopback, private, link-local and metadata targets are refused when saved and again at delivery."""

import socket

import pytest

from crm.errors import ValidationFailed
from webhooks.delivery import deliver_due
from webhooks.models import Attempt, EventType, Message
from webhooks.services import subscription_create, subscription_update

pytestmark = pytest.mark.django_db

PUBLIC = "93.184.215.14"


def fake_dns(monkeypatch, names: dict[str, str]):
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in names:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (names[host], port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8000/hook",  # a name that resolves to 127.0.0.1
        "http://10.1.2.3/",
        "http://192.168.0.10/",
        "http://172.16.5.5/",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://100.64.0.1/",  # carrier-grade NAT
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[fd00:ec2::254]/",
        "http://0.0.0.0/",
    ],
)
def test_private_targets_are_refused_when_saved(url):
    with pytest.raises(ValidationFailed) as error:
        subscription_create(url=url, events=[EventType.PROFILE_CREATED])
    assert error.value.field == "url"


def test_a_public_name_resolving_to_loopback_is_refused(monkeypatch):
    fake_dns(monkeypatch, {"hooks.example.com": "127.0.0.1"})
    with pytest.raises(ValidationFailed, match=r"127\.0\.0\.1"):
        subscription_create(url="https://hooks.example.com/in", events=[EventType.PROFILE_CREATED])


@pytest.mark.parametrize("url", ["ftp://example.com/", "http:///nohost", "https://user:pw@example.com/", "not a url"])
def test_other_urls_are_refused(url):
    with pytest.raises(ValidationFailed):
        subscription_create(url=url, events=[EventType.PROFILE_CREATED])


def test_a_public_target_is_accepted(monkeypatch):
    fake_dns(monkeypatch, {"hooks.example.com": PUBLIC})
    _, secret = subscription_create(url="https://hooks.example.com/in", events=[EventType.TAG_ADDED])
    assert secret.startswith("whsec_")


def test_a_name_that_turns_private_after_saving_is_refused_at_delivery(monkeypatch, receiver, make_profile):
    fake_dns(monkeypatch, {"hooks.example.com": PUBLIC})
    subscription_create(url=f"http://hooks.example.com:{receiver.port}/hook", events=[EventType.PROFILE_CREATED])
    make_profile(email="ada@example.com")
    fake_dns(monkeypatch, {"hooks.example.com": "127.0.0.1"})  # DNS rebinding
    deliver_due()
    assert receiver.requests == []
    attempt = Attempt.objects.get()
    assert attempt.status_code is None and "127.0.0.1" in attempt.error
    assert Message.objects.get().state == "pending"  # retried later, checked again then


def test_the_connection_goes_to_the_address_that_was_checked(monkeypatch, receiver, make_profile, allow_private):
    fake_dns(monkeypatch, {"hooks.internal": "127.0.0.1"})
    subscription_create(url=f"http://hooks.internal:{receiver.port}/hook", events=[EventType.PROFILE_CREATED])
    make_profile(email="ada@example.com")
    deliver_due()
    (request,) = receiver.requests
    assert request.headers["Host"] == f"hooks.internal:{receiver.port}"


def test_the_switch_allows_private_targets(allow_private, receiver):
    subscription, _ = subscription_create(url=receiver.url, events=[EventType.PROFILE_CREATED])
    assert subscription.url == receiver.url


def test_a_disabled_subscription_needs_only_a_well_formed_url_until_it_is_enabled(settings):
    """It sends nothing, so its address is checked when it is enabled (the demo data's example points at a host
    that may not resolve where the demo runs)."""
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
    events = [EventType.PROFILE_CREATED]
    subscription, _ = subscription_create(url="https://unresolvable.invalid/in", events=events, enabled=False)
    assert not subscription.enabled
    with pytest.raises(ValidationFailed):  # malformed is still refused
        subscription_create(url="ftp://example.com/", events=events, enabled=False)
    with pytest.raises(ValidationFailed, match="cannot be resolved") as error:
        subscription_update(subscription_id=subscription.pk, url=subscription.url, events=events, enabled=True)
    assert error.value.field == "url"
    with pytest.raises(ValidationFailed, match=r"127\.0\.0\.1"):
        subscription_update(subscription_id=subscription.pk, url="http://127.0.0.1/in", events=events, enabled=True)
