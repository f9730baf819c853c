"""Delivery of outbox messages: claim due ones with ``FOR UPDATE SKIP LOCKED``, sign, send, record.

A pass (``deliver_due``) claims up to ``limit`` due messages of enabled subscriptions in one transaction,
at most one per (subscription, profile) and only the oldest pending one of each, so a profile's messages
reach a subscription in change order while different profiles go in parallel. The requests run while the
rows stay locked; their outcome is written before the commit. A worker killed mid-pass loses only its
uncommitted transaction: the messages are claimed again (same ``webhook-id``), so a receiver sees a
duplicate only when the answer to a request was lost.

Retries follow ``WEBHOOK_RETRY_SCHEDULE`` (seconds before attempt 1, 2, …; the Standard Webhooks
schedule by default); a 410 answer disables the subscription, and so does failing for
``WEBHOOK_DISABLE_AFTER_SECONDS`` (five days) without a success in between.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from standardwebhooks import Webhook

from crm.errors import DomainError
from webhooks.models import Attempt, Event, Subscription, webhook_id_of
from webhooks.services import events_render, outbox_fan_out
from webhooks.targets import Target, target_resolve

logger = logging.getLogger(__name__)

EXCERPT_CHARS = 1000
READ_LIMIT = 64 * 1024
USER_AGENT = "crm-webhooks/1"
DEFAULT_SCHEDULE = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)

CLAIM_SQL = """
SELECT m.id, m.subscription_id, m.event_id, m.uid, m.attempt_count, m.manual
FROM webhooks_message m
JOIN webhooks_subscription s ON s.id = m.subscription_id AND s.enabled
WHERE m.state = 'pending' AND m.next_attempt_at <= %(now)s
  AND NOT EXISTS (
      SELECT 1 FROM webhooks_message p
      WHERE p.state = 'pending' AND p.subscription_id = m.subscription_id
        AND p.profile_id = m.profile_id AND p.id < m.id
  )
ORDER BY m.next_attempt_at, m.id
LIMIT %(limit)s
FOR UPDATE OF m SKIP LOCKED
"""

UPDATE_SQL = """
UPDATE webhooks_message AS m
SET state = u.state, attempt_count = m.attempt_count + 1, next_attempt_at = u.next_at, manual = false,
    delivered_at = COALESCE(u.delivered_at, m.delivered_at)
FROM json_to_recordset(%s::json) AS u(id bigint, state text, next_at timestamptz, delivered_at timestamptz)
WHERE m.id = u.id
"""


def retry_schedule() -> tuple[int, ...]:
    schedule = getattr(settings, "WEBHOOK_RETRY_SCHEDULE", None) or DEFAULT_SCHEDULE
    return tuple(int(s) for s in schedule)


@dataclass
class Claimed:
    id: int
    subscription_id: int
    event_id: int
    uid: object
    attempt_count: int
    manual: bool

    @property
    def webhook_id(self) -> str:
        return webhook_id_of(self.uid)


@dataclass
class Outcome:
    status_code: int | None
    duration_ms: int
    excerpt: str
    error: str

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the checked address, whatever the name resolves to now."""

    def __init__(self, target: Target, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, target: Target, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout, context=ssl.create_default_context())
        self._address = target.address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def signed_headers(*, secret: str, webhook_id: str, body: str, at: datetime) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt (``v1,`` HMAC-SHA256 of ``id.timestamp.body``)."""
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(webhook_id, at.astimezone(timezone.UTC), body),
    }


def http_send(*, url: str, body: str, headers: dict[str, str], timeout: float | None = None) -> Outcome:
    """POST ``body`` to ``url``: resolved and checked once, connected to that address, no redirects followed."""
    timeout = timeout if timeout is not None else getattr(settings, "WEBHOOK_TIMEOUT_SECONDS", 15)
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        target = target_resolve(url)
    except DomainError as exc:
        return Outcome(None, elapsed(), "", exc.message)
    connection_class = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    conn = connection_class(target, timeout)
    try:
        conn.request(
            "POST",
            target.path,
            body=body.encode(),
            headers={
                "Host": target.host_header,
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                **headers,
            },
        )
        response = conn.getresponse()
        deadline = started + timeout
        chunks, size = [], 0
        while size < READ_LIMIT and time.monotonic() < deadline:
            chunk = response.read1(READ_LIMIT - size) if hasattr(response, "read1") else response.read(4096)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        excerpt = b"".join(chunks)[: EXCERPT_CHARS * 4].decode("utf-8", "replace")[:EXCERPT_CHARS]
        return Outcome(response.status, elapsed(), excerpt, "")
    except (OSError, http.client.HTTPException) as exc:
        error = "timed out" if isinstance(exc, TimeoutError | socket.timeout) else f"{type(exc).__name__}: {exc}"
        return Outcome(None, elapsed(), "", error[:500])
    finally:
        conn.close()


_executor: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(
            max_workers=getattr(settings, "WEBHOOK_HTTP_THREADS", 16), thread_name_prefix="webhook-http"
        )
    return _executor


def _claim(now: datetime, limit: int) -> list[Claimed]:
    with connection.cursor() as cursor:
        cursor.execute(CLAIM_SQL, {"now": now, "limit": limit})
        return [Claimed(*row) for row in cursor.fetchall()]


def deliver_due(*, now: datetime | None = None, limit: int = 20) -> int:
    """One pass: claim, send and record up to ``limit`` due messages; returns how many were attempted.

    ``now`` is the clock for the due check, the signatures and the retry times (tests move it).
    """
    now = now or timezone.now()
    outbox_fan_out()
    with transaction.atomic():
        claimed = _claim(now, limit)
        if not claimed:
            return 0
        subscriptions = Subscription.objects.in_bulk({c.subscription_id for c in claimed})
        bodies = events_render(Event.objects.filter(pk__in={c.event_id for c in claimed}))
        jobs = []
        for message in claimed:
            subscription, body = subscriptions[message.subscription_id], bodies[message.event_id]
            headers = signed_headers(secret=subscription.secret, webhook_id=message.webhook_id, body=body, at=now)
            jobs.append(_pool().submit(http_send, url=subscription.url, body=body, headers=headers))
        outcomes = [job.result() for job in jobs]
        _record(now, claimed, outcomes, subscriptions)
    return len(claimed)


def _record(now, claimed: list[Claimed], outcomes: list[Outcome], subscriptions: dict[int, Subscription]) -> None:
    schedule = retry_schedule()
    Attempt.objects.bulk_create(
        [
            Attempt(
                message_id=m.id,
                attempted_at=now,
                status_code=o.status_code,
                duration_ms=o.duration_ms,
                response_excerpt=o.excerpt,
                error=o.error,
            )
            for m, o in zip(claimed, outcomes, strict=True)
        ]
    )
    updates, succeeded, failed, gone = [], set(), set(), set()
    for message, outcome in zip(claimed, outcomes, strict=True):
        attempts = message.attempt_count + 1
        if outcome.succeeded:
            succeeded.add(message.subscription_id)
            updates.append({"id": message.id, "state": "delivered", "next_at": None, "delivered_at": now.isoformat()})
            continue
        failed.add(message.subscription_id)
        if outcome.status_code == 410:
            gone.add(message.subscription_id)
        if outcome.status_code == 410 or message.manual or attempts >= len(schedule):
            updates.append({"id": message.id, "state": "failed", "next_at": None, "delivered_at": None})
        else:
            next_at = now + timedelta(seconds=schedule[attempts])
            updates.append({"id": message.id, "state": "pending", "next_at": next_at.isoformat(), "delivered_at": None})
    with connection.cursor() as cursor:
        cursor.execute(UPDATE_SQL, [json.dumps(updates)])
    _subscriptions_health(now, succeeded=succeeded, failed=failed - succeeded, gone=gone)


def _subscriptions_health(now, *, succeeded: set[int], failed: set[int], gone: set[int]) -> None:
    """A success ends a failing streak; a first failure starts one; 410 or a streak too long disables."""
    if succeeded:
        Subscription.objects.filter(pk__in=succeeded, failing_since__isnull=False).update(failing_since=None)
    if failed:
        Subscription.objects.filter(pk__in=failed, failing_since__isnull=True).update(failing_since=now)
        limit = timedelta(seconds=getattr(settings, "WEBHOOK_DISABLE_AFTER_SECONDS", 5 * 24 * 3600))
        Subscription.objects.filter(pk__in=failed, enabled=True, failing_since__lte=now - limit).update(
            enabled=False,
            disabled_at=now,
            disabled_reason=f"Every delivery failed for {_duration(limit)}.",
        )
    if gone:
        Subscription.objects.filter(pk__in=gone, enabled=True).update(
            enabled=False, disabled_at=now, disabled_reason="The receiver answered 410 Gone."
        )


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds % 86400 == 0:
        days = seconds // 86400
        return f"{days} day{'s' if days != 1 else ''}"
    return f"{seconds} seconds"


def next_due_in(now: datetime | None = None) -> float | None:
    """Seconds until the earliest pending message of an enabled subscription is due (None: none pending)."""
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT min(m.next_attempt_at) FROM webhooks_message m
            JOIN webhooks_subscription s ON s.id = m.subscription_id AND s.enabled
            WHERE m.state = 'pending'
            """
        )
        earliest = cursor.fetchone()[0]
    if earliest is None:
        return None
    return max(0.0, (earliest - now).total_seconds())
