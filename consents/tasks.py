"""Background tasks of the consents app (Django's tasks framework, run by ``manage.py db_worker``)."""

import logging

from django.tasks import task

logger = logging.getLogger(__name__)


@task
def confirmation_emails_send(requests: list[list[int]]) -> int:
    """Send the double opt-in e-mails that consent writes asked for: ``[clientId, agreementId, recordId]`` each.

    One failed e-mail is logged and does not stop the others (the write can be repeated with force).
    Returns how many were sent.
    """
    from consents.mail import confirmation_email_send

    sent = 0
    for client_id, agreement_id, record_id in requests:
        try:
            confirmation_email_send(client_id=client_id, agreement_id=agreement_id, record_id=record_id)
        except Exception:
            logger.exception("consents: confirmation e-mail to clientId %s failed", client_id)
            continue
        sent += 1
    return sent
