import re

import pytest
from django.core import signing
from django.test import override_settings

from consents.models import ConsentRecord, ConsentState, ConsentStatus
from consents.services import consent_set
from consents.tokens import confirmation_token

pytestmark = pytest.mark.usefixtures("immediate_tasks")  # the e-mails are queued; run the task at once

A, G, D = ConsentStatus.AWAITING, ConsentStatus.GRANTED, ConsentStatus.DENIED


def state_of(profile, agreement):
    return ConsentState.objects.get(profile=profile, agreement=agreement).status


def link_in(message, path):
    return re.search(rf"https?://[^\s\"<>]+{path}[^\s\"<>]+/", message.body).group(0)


def ask(profile, agreement, capture, **kwargs):
    with capture(execute=True):
        return consent_set(profile=profile, agreement=agreement, state=A, source="api", actor="k", **kwargs)


def test_round_trip_from_request_to_confirmation(
    make_profile, newsletter, client, mailoutbox, django_capture_on_commit_callbacks
):
    profile = make_profile(email="ann@example.com", first_name="Ann")
    ask(profile, newsletter, django_capture_on_commit_callbacks)

    assert state_of(profile, newsletter) == A
    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == ["ann@example.com"]
    assert message.subject == "Please confirm: Weekly newsletter"
    assert "Send me the weekly newsletter." in message.body
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert re.fullmatch(r"<http://localhost:8000/consents/resign/[^>]+/>", message.extra_headers["List-Unsubscribe"])
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html"
    assert "/consents/confirm/" in html

    url = link_in(message, "/consents/confirm/")
    response = client.get(
        url.removeprefix("http://localhost:8000"), HTTP_USER_AGENT="Mail app", REMOTE_ADDR="192.0.2.9"
    )

    assert response.status_code == 200
    assert b"your consent is confirmed" in response.content
    assert state_of(profile, newsletter) == G
    last = ConsentRecord.objects.filter(client_id=profile.pk).order_by("-seq").first()
    assert (last.old_status, last.new_status, last.source) == (A, G, "confirmation")
    assert (last.ip_address, last.user_agent) == ("192.0.2.9", "Mail app")

    again = client.get(url.removeprefix("http://localhost:8000"))
    assert b"Already confirmed" in again.content
    assert ConsentRecord.objects.filter(client_id=profile.pk).count() == 2


def test_force_sends_the_request_again_without_a_ledger_record(
    make_profile, newsletter, mailoutbox, django_capture_on_commit_callbacks
):
    profile = make_profile(email="ann@example.com")
    ask(profile, newsletter, django_capture_on_commit_callbacks)
    assert ask(profile, newsletter, django_capture_on_commit_callbacks) is False
    assert len(mailoutbox) == 1  # a repeat without force sends nothing

    assert ask(profile, newsletter, django_capture_on_commit_callbacks, force=True) is False
    assert len(mailoutbox) == 2
    assert ConsentRecord.objects.filter(client_id=profile.pk).count() == 1


def test_an_expired_link_shows_a_page_and_changes_nothing(
    make_profile, newsletter, client, mailoutbox, django_capture_on_commit_callbacks
):
    profile = make_profile(email="ann@example.com")
    with override_settings(CONSENT_CONFIRMATION_MAX_AGE=-1):
        ask(profile, newsletter, django_capture_on_commit_callbacks)
        response = client.get(link_in(mailoutbox[0], "/consents/confirm/").removeprefix("http://localhost:8000"))
    assert response.status_code == 410
    assert b"This link has expired" in response.content
    assert state_of(profile, newsletter) == A
    assert ConsentRecord.objects.filter(client_id=profile.pk).count() == 1


@pytest.mark.parametrize("tamper", ["flip", "forged"])
def test_a_tampered_link_shows_a_page_and_changes_nothing(
    make_profile, newsletter, client, mailoutbox, django_capture_on_commit_callbacks, tamper
):
    profile = make_profile(email="ann@example.com")
    ask(profile, newsletter, django_capture_on_commit_callbacks)
    record = ConsentRecord.objects.get(client_id=profile.pk)
    if tamper == "flip":
        token = link_in(mailoutbox[0], "/consents/confirm/").rstrip("/").rsplit("/", 1)[1]
        token = token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb")
    else:  # right payload, signed with another key
        token = signing.dumps(
            {"c": profile.pk, "a": newsletter.pk, "r": record.pk}, key="not-our-key", salt="consents.confirm"
        )
    response = client.get(f"/consents/confirm/{token}/")
    assert response.status_code == 400
    assert b"This link is not valid" in response.content
    assert state_of(profile, newsletter) == A


def test_an_old_link_does_not_grant_after_a_withdrawal(make_profile, newsletter, client):
    profile = make_profile(email="ann@example.com")
    consent_set(profile=profile, agreement=newsletter, state=A, source="api")
    first = ConsentRecord.objects.get(client_id=profile.pk)
    consent_set(profile=profile, agreement=newsletter, state=D, source="api")
    consent_set(profile=profile, agreement=newsletter, state=A, source="api")
    token = confirmation_token(client_id=profile.pk, agreement_id=newsletter.pk, record_id=first.pk)

    response = client.get(f"/consents/confirm/{token}/")

    assert b"no longer pending" in response.content
    assert state_of(profile, newsletter) == A


def test_a_link_for_an_agreement_that_needs_no_confirmation_is_refused(make_profile, email_agreement, client):
    profile = make_profile(email="ann@example.com")
    token = confirmation_token(client_id=profile.pk, agreement_id=email_agreement.pk, record_id=1)
    response = client.get(f"/consents/confirm/{token}/")
    assert response.status_code == 400
    assert not ConsentState.objects.filter(profile=profile).exists()


def test_a_head_request_does_not_confirm(make_profile, newsletter, client):
    profile = make_profile(email="ann@example.com")
    consent_set(profile=profile, agreement=newsletter, state=A, source="api")
    record = ConsentRecord.objects.get(client_id=profile.pk)
    token = confirmation_token(client_id=profile.pk, agreement_id=newsletter.pk, record_id=record.pk)
    assert client.head(f"/consents/confirm/{token}/").status_code == 405
    assert state_of(profile, newsletter) == A
