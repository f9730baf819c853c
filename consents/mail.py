"""Outgoing e-mail: one helper builds every message, with RFC 8058 one-click unsubscribe headers.

``message_build`` adds ``List-Unsubscribe`` (the profile's signed resignation link) and
``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` to every message. Marketing goes through
``marketing_email_send``, which asks ``can_contact`` first; the double opt-in request is the one
message sent without a granted consent (it asks for it).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from consents.models import Agreement
from consents.tokens import confirmation_token, resignation_token
from profiles.models import Profile

logger = logging.getLogger(__name__)


def absolute_url(path: str) -> str:
    return settings.PUBLIC_BASE_URL.rstrip("/") + path


def resignation_url(*, client_id: int, agreement_id: int | None = None) -> str:
    token = resignation_token(client_id=client_id, agreement_id=agreement_id)
    return absolute_url(reverse("consents:resign", args=[token]))


def unsubscribe_headers(*, client_id: int, agreement_id: int | None = None) -> dict[str, str]:
    """The RFC 2369 / RFC 8058 headers: a one-click POST to the link withdraws the message's agreement."""
    return {
        "List-Unsubscribe": f"<{resignation_url(client_id=client_id, agreement_id=agreement_id)}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def message_build(
    *, profile, subject: str, text: str, html: str | None = None, agreement: Agreement | None = None
) -> EmailMultiAlternatives:
    """An e-mail to the profile's address with the unsubscribe headers (for ``agreement``, else the e-mail one)."""
    if not profile.email:
        raise ValueError(f"clientId {profile.pk} has no e-mail address.")
    message = EmailMultiAlternatives(
        subject=" ".join(subject.split()),
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[profile.email],
        headers=unsubscribe_headers(client_id=profile.pk, agreement_id=agreement.pk if agreement else None),
    )
    if html is not None:
        message.attach_alternative(html, "text/html")
    return message


def marketing_email_send(*, profile, subject: str, text: str, html: str | None = None, agreement=None) -> bool:
    """Send a marketing e-mail if the consent guard allows it; returns whether it was sent."""
    from consents.selectors import can_contact

    if not can_contact(profile=profile, channel="email", agreement=agreement):
        return False
    message_build(profile=profile, subject=subject, text=text, html=html, agreement=agreement).send()
    return True


def confirmation_email_send(*, client_id: int, agreement_id: int, record_id: int) -> None:
    """The double opt-in request: a signed, expiring link that grants the agreement when opened."""

    profile = Profile.objects.get(pk=client_id)
    agreement = Agreement.objects.get(pk=agreement_id)
    token = confirmation_token(client_id=client_id, agreement_id=agreement_id, record_id=record_id)
    context = {
        "profile": profile,
        "agreement": agreement,
        "text": agreement.current_text,
        "confirm_url": absolute_url(reverse("consents:confirm", args=[token])),
        "resign_url": resignation_url(client_id=client_id, agreement_id=agreement_id),
        "valid_hours": settings.CONSENT_CONFIRMATION_MAX_AGE // 3600,
    }
    message_build(
        profile=profile,
        subject=render_to_string("consents/email/confirm_subject.txt", context),
        text=render_to_string("consents/email/confirm.txt", context),
        html=render_to_string("consents/email/confirm.html", context),
        agreement=agreement,
    ).send()


def confirmation_emails_deliver(*, requests: list[list[int]]) -> int:
    """Send the double opt-in e-mails that consent writes asked for: ``[clientId, agreementId, recordId]`` each
    (the work of ``consents.tasks.confirmation_emails_send``).

    One failed e-mail is logged and does not stop the others (the write can be repeated with force).
    Returns how many were sent.
    """
    sent = 0
    for client_id, agreement_id, record_id in requests:
        try:
            confirmation_email_send(client_id=client_id, agreement_id=agreement_id, record_id=record_id)
        except Exception:
            logger.exception("consents: confirmation e-mail to clientId %s failed", client_id)
            continue
        sent += 1
    return sent
