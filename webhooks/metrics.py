"""The webhooks' metrics: deliveries by result and their time (counted by the worker that sends them), and the
outbox's backlog (read when the metrics are asked, through the platform's gauge registry)."""

from __future__ import annotations

from django.utils import timezone
from prometheus_client import Counter, Histogram

from crm.metrics import gauge_register, read_once
from webhooks.selectors import fan_out_backlog, subscriptions_backlog

DELIVERIES = Counter(
    "crm_webhook_deliveries",
    "Webhook delivery attempts by result: delivered, retrying (failed; tried again on the schedule) or failed "
    "(given up: the last attempt, a resend, or 410 Gone).",
    ["result"],
)
DELIVERY_DURATION = Histogram(
    "crm_webhook_delivery_duration_seconds",
    "Time of one delivery attempt (connect, send, answer).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 30.0),
)
RESULTS = {"delivered": "delivered", "pending": "retrying", "failed": "failed"}


def deliveries_count(*, states: list[str], durations_ms: list[int]) -> None:
    """Count one delivery pass: the state each attempted message was left in, and each attempt's time."""
    for state in states:
        DELIVERIES.labels(RESULTS.get(state, state)).inc()
    for duration in durations_ms:
        DELIVERY_DURATION.observe(duration / 1000)


_backlogs = read_once(subscriptions_backlog)


def _pending():
    for backlog in _backlogs():
        yield (str(backlog.subscription_id),), backlog.pending


def _oldest_age():
    now = timezone.now()
    for backlog in _backlogs():
        age = (now - backlog.oldest).total_seconds() if backlog.oldest else 0.0
        yield (str(backlog.subscription_id),), max(age, 0.0)


def _fan_out():
    count, _ = fan_out_backlog()
    yield (), count


def register() -> None:
    gauge_register(
        name="crm_webhook_outbox_pending",
        documentation="Webhook messages waiting to be delivered (retries included, and changes not yet fanned out "
        "into messages), per subscription id.",
        labels=("subscription",),
        read=_pending,
    )
    gauge_register(
        name="crm_webhook_outbox_oldest_pending_age_seconds",
        documentation="Age of the change behind each subscription's oldest pending message (0: none pending).",
        labels=("subscription",),
        read=_oldest_age,
        unit="seconds",
    )
    gauge_register(
        name="crm_webhook_outbox_fan_out_pending",
        documentation="Outbox events committed and not yet fanned out into messages by the webhook worker.",
        read=_fan_out,
    )
