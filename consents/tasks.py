"""The consents app's worker tasks (run by the configured ``django.tasks`` backend)."""

from django.tasks import task

from consents.mail import confirmation_emails_deliver
from crm.queues import DELIVERIES


@task(queue_name=DELIVERIES)
def confirmation_emails_send(requests: list[list[int]]) -> int:
    """Send the double opt-in e-mails a consent write asked for, after its commit; returns how many were sent."""
    return confirmation_emails_deliver(requests=requests)
