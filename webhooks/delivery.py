"""Delivery of outbox messages: claim due ones with ``FOR UPDATE SKIP LOCKED``, sign, send, record.

A pass (``deliver_due``) claims up to ``limit`` due messages of enabled subscriptions in one transaction (at most
``WEBHOOK_MAX_IN_FLIGHT`` claimed and unanswered per subscription in the process: ``InFlight``),
at most one per (subscription, profile) and only the oldest pending one of each, so a profile's messages
reach a subscription in change order while different profiles go in parallel. The requests run while the
rows stay locked, together on the process's HTTP threads and over connections kept open per receiver
(``ConnectionPool``: each pinned to the address checked when it was opened); their outcome is written before
the commit. A worker killed mid-pass loses only its uncommitted transaction: the messages are claimed again
(same ``webhook-id``), so a receiver sees a duplicate only when the answer to a request was lost.

A message retried later holds the profile's later messages to that subscription at its retry time (they could
not go before it anyway), so the claim's scan and the idle worker's "what is due next" never count them.

Retries follow ``WEBHOOK_RETRY_SCHEDULE`` (seconds before attempt 1, 2, …; the Standard Webhooks
schedule by default); a 410 answer disables the subscription, and so does failing for
``WEBHOOK_DISABLE_AFTER_SECONDS`` (five days) without a success in between.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from standardwebhooks import Webhook

from crm.errors import DomainError
from crm.outbound import Target, host_header, pinned_connection
from crm.sockets import idle_socket_readable
from webhooks.metrics import deliveries_count
from webhooks.models import Attempt, Event, Subscription, webhook_id_of
from webhooks.services import events_render, outbox_fan_out
from webhooks.targets import address_allowed, target_resolve, url_split

logger = logging.getLogger(__name__)

EXCERPT_CHARS = 1000
READ_LIMIT = 64 * 1024
USER_AGENT = "crm-webhooks/1"

# Per enabled subscription (a disabled one's backlog is never read), its oldest due messages in due order, at most
# the room it has left under WEBHOOK_MAX_IN_FLIGHT in this process (``busy``: how many of its messages this process
# has claimed and not yet had answered). Each subscription's scan is an index range scan of webhooks_message_due.
CLAIM_SQL = """
SELECT c.id, c.subscription_id, c.event_id, c.uid, c.attempt_count, c.manual, c.profile_id
FROM (
    SELECT s.id, LEAST(%(cap)s - COALESCE(b.n, 0), %(limit)s) AS room
    FROM webhooks_subscription s
    LEFT JOIN json_to_recordset(%(busy)s::json) AS b(s bigint, n int) ON b.s = s.id
    WHERE s.enabled AND COALESCE(b.n, 0) < %(cap)s
    ORDER BY s.id > %(after)s DESC, s.id  -- round the subscriptions: a claim that fills up stops at one of them
    OFFSET 0
) AS s
CROSS JOIN LATERAL (
    SELECT m.id, m.subscription_id, m.event_id, m.uid, m.attempt_count, m.manual, m.profile_id
    FROM webhooks_message m
    WHERE m.subscription_id = s.id AND m.state = 'pending' AND m.next_attempt_at <= %(now)s
      -- Under OR the check stays a per-row subplan probing webhooks_message_profile_order with m's values: a plain
      -- NOT EXISTS becomes an anti-join that, planned on statistics taken with nothing pending, scanned every
      -- pending message once per candidate (120 ms a claim at 9,000 pending instead of 0.3 ms).
      AND (m.profile_id IS NULL OR NOT EXISTS (
          SELECT 1 FROM webhooks_message p
          WHERE p.state = 'pending' AND p.subscription_id = m.subscription_id
            AND p.profile_id = m.profile_id AND p.id < m.id
      ))
    ORDER BY m.next_attempt_at, m.id
    LIMIT s.room
    FOR UPDATE OF m SKIP LOCKED
) AS c
LIMIT %(limit)s
"""

UPDATE_SQL = """
UPDATE webhooks_message AS m
SET state = u.state, attempt_count = m.attempt_count + 1, next_attempt_at = u.next_at, manual = false,
    delivered_at = COALESCE(u.delivered_at, m.delivered_at)
FROM json_to_recordset(%s::json) AS u(id bigint, state text, next_at timestamptz, delivered_at timestamptz)
WHERE m.id = u.id
"""

# A profile's later messages to the subscription wait behind one that is retried: they take its retry time, so a
# claim never walks over them (nor does the idle worker see them as due) until it comes. These per-profile
# statements, like the claim's check, bound no next_attempt_at: webhooks_message_due cannot serve them.
HOLD_SQL = """
UPDATE webhooks_message AS m SET next_attempt_at = GREATEST(m.next_attempt_at, x.next_at)
FROM (
    SELECT later.id, u.next_at
    FROM json_to_recordset(%s::json) AS u(id bigint, s bigint, p bigint, next_at timestamptz)
    CROSS JOIN LATERAL (
        SELECT p.id FROM webhooks_message p
        WHERE p.state = 'pending' AND p.subscription_id = u.s AND p.profile_id = u.p AND p.id > u.id
        OFFSET 0  -- a probe per row of u (see CLAIM_SQL)
    ) AS later
) AS x
WHERE m.id = x.id
"""

# When such a message is done (delivered or given up, a resend perhaps ahead of its retry time), the ones held
# behind it and never attempted are due at once.
RELEASE_SQL = """
UPDATE webhooks_message AS m SET next_attempt_at = LEAST(m.next_attempt_at, %s)
FROM (
    SELECT later.id
    FROM json_to_recordset(%s::json) AS u(id bigint, s bigint, p bigint)
    CROSS JOIN LATERAL (
        SELECT p.id FROM webhooks_message p
        WHERE p.state = 'pending' AND p.subscription_id = u.s AND p.profile_id = u.p AND p.id > u.id
          AND p.attempt_count = 0
        OFFSET 0  -- a probe per row of u (see CLAIM_SQL)
    ) AS later
) AS x
WHERE m.id = x.id
"""


def retry_schedule() -> tuple[int, ...]:
    return tuple(int(s) for s in settings.WEBHOOK_RETRY_SCHEDULE)


@dataclass
class Claimed:
    id: int
    subscription_id: int
    event_id: int
    uid: object
    attempt_count: int
    manual: bool
    profile_id: int | None

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


@dataclass
class _Kept:
    conn: http.client.HTTPConnection
    opened: float
    idle_since: float


class ConnectionPool:
    """Keep-alive connections of one worker process, by target (scheme, host, port).

    A connection is opened to the address ``target_resolve`` checked for it (the name resolved once then) and is
    used again for later messages to the same target while it is younger than ``max_age`` seconds and has been
    idle less than ``max_idle``; a connection the receiver closed, or whose address is no longer allowed (the
    private-targets switch turned off), is dropped, and the next request opens a new one, resolving and checking
    the name again. At most ``per_target`` idle connections are kept per target.
    """

    def __init__(self, *, per_target: int = 16, max_age: float = 60.0, max_idle: float = 30.0):
        self.per_target, self.max_age, self.max_idle = per_target, max_age, max_idle
        self._lock = threading.Lock()
        self._idle: dict[tuple[str, str, int], list[_Kept]] = {}
        self.opened = 0  # connections opened so far (tests, the benchmark)

    def take(self, key: tuple[str, str, int]) -> _Kept | None:
        """An idle connection to ``key`` still fit for a request, or None."""
        now = time.monotonic()
        while True:
            with self._lock:
                kept_list = self._idle.get(key)
                if not kept_list:
                    return None
                kept = kept_list.pop()  # the most recently used: the least likely to have been closed
            if (
                now - kept.opened < self.max_age
                and now - kept.idle_since < self.max_idle
                and address_allowed(kept.conn.address)
                and not _closed_by_peer(kept.conn.sock)
            ):
                return kept
            kept.conn.close()

    def give_back(self, key: tuple[str, str, int], kept: _Kept) -> None:
        kept.idle_since = time.monotonic()
        with self._lock:
            kept_list = self._idle.setdefault(key, [])
            if len(kept_list) < self.per_target:
                kept_list.append(kept)
                return
        kept.conn.close()

    def open(self, target: Target, timeout: float) -> _Kept:
        conn = pinned_connection(target, timeout)
        with self._lock:
            self.opened += 1
        now = time.monotonic()
        return _Kept(conn, now, now)

    def close_all(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for kept_list in idle.values():
            for kept in kept_list:
                kept.conn.close()


def _closed_by_peer(sock) -> bool:
    """An idle keep-alive socket that is readable was closed by the receiver (or sent what nobody asked for)."""
    return sock is None or idle_socket_readable(sock)


_pools_lock = threading.Lock()
_connections: ConnectionPool | None = None


def connection_pool() -> ConnectionPool:
    global _connections
    if _connections is None:
        with _pools_lock:
            if _connections is None:
                _connections = ConnectionPool(per_target=_http_threads())
    return _connections


def signed_headers(*, secret: str, webhook_id: str, body: str, at: datetime, signer: Webhook | None = None):
    """The Standard Webhooks headers of one attempt (``v1,`` HMAC-SHA256 of ``id.timestamp.body``)."""
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": (signer or Webhook(secret)).sign(webhook_id, at.astimezone(timezone.UTC), body),
    }


# A request on a kept connection that the receiver had closed meanwhile fails before any answer: sent again
# once on a new connection (an answer lost this way is a duplicate with the same webhook-id, as after a crash).
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


def http_send(*, url: str, body: str, headers: dict[str, str], timeout: float | None = None) -> Outcome:
    """POST ``body`` to ``url`` over a kept connection to it or a new one (the name resolved and checked once,
    connected to that address); no redirects followed."""
    timeout = timeout if timeout is not None else settings.WEBHOOK_TIMEOUT_SECONDS
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        scheme, host, port, path = url_split(url)
    except DomainError as exc:
        return Outcome(None, elapsed(), "", exc.message)
    pool, key = connection_pool(), (scheme, host, port)
    kept = pool.take(key)
    for reused in (True, False) if kept is not None else (False,):
        if not reused:
            try:
                target = target_resolve(url)
            except DomainError as exc:
                return Outcome(None, elapsed(), "", exc.message)
            try:
                kept = pool.open(target, timeout)
            except OSError as exc:
                return Outcome(None, elapsed(), "", _error_text(exc))
        try:
            return _exchange(pool, key, kept, path, body, headers, started, timeout)
        except _STALE as exc:
            kept.conn.close()
            if reused:
                continue
            return Outcome(None, elapsed(), "", _error_text(exc))
        except (OSError, http.client.HTTPException) as exc:
            kept.conn.close()
            return Outcome(None, elapsed(), "", _error_text(exc))
    raise AssertionError("unreachable")  # pragma: no cover


def _exchange(pool, key, kept: _Kept, path: str, body: str, headers, started: float, timeout: float) -> Outcome:
    """One request to ``path`` of the target ``key`` (scheme, host, port) and its answer on ``kept``; the
    connection goes back to the pool when the answer was read to its end and the receiver keeps it open, else it
    is closed."""
    conn = kept.conn
    conn.timeout = timeout
    conn.sock.settimeout(timeout)
    scheme, host, port = key
    conn.request(
        "POST",
        path,
        body=body.encode(),
        headers={
            "Host": host_header(scheme, host, port),
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            **headers,
        },
    )
    response = conn.getresponse()
    deadline = started + timeout
    chunks, size = [], 0
    try:
        while size < READ_LIMIT and time.monotonic() < deadline:
            chunk = response.read1(READ_LIMIT - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except (OSError, http.client.HTTPException):
        conn.close()  # the status arrived: the attempt has its answer, only the rest of the body is lost
    excerpt = b"".join(chunks)[: EXCERPT_CHARS * 4].decode("utf-8", "replace")[:EXCERPT_CHARS]
    outcome = Outcome(response.status, int((time.monotonic() - started) * 1000), excerpt, "")
    if response.isclosed() and not response.will_close and conn.sock is not None:
        pool.give_back(key, kept)
    else:
        response.close()
        conn.close()
    return outcome


def _error_text(exc: BaseException) -> str:
    error = "timed out" if isinstance(exc, TimeoutError | socket.timeout) else f"{type(exc).__name__}: {exc}"
    return error[:500]


_executor: ThreadPoolExecutor | None = None


def _http_threads() -> int:
    return max(1, int(settings.WEBHOOK_HTTP_THREADS))


def _pool() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        with _pools_lock:
            if _executor is None:
                _executor = ThreadPoolExecutor(max_workers=_http_threads(), thread_name_prefix="webhook-http")
    return _executor


def max_in_flight() -> int:
    return max(1, int(settings.WEBHOOK_MAX_IN_FLIGHT))


class InFlight:
    """Per subscription, the messages this process has claimed whose request has not been answered yet.

    A claim takes at most ``WEBHOOK_MAX_IN_FLIGHT`` minus that of a subscription, so a receiver that answers slowly
    (or not at all, until the timeout) holds at most that many of the shared HTTP threads; the rest of its due
    messages stay pending, in their order, for a later claim. Claims of one process take turns (a lock), so two
    claiming threads never both fill the same room.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self.claim_lock = threading.Lock()
        self._counts: dict[int, int] = {}
        self.turn = 0  # a full claim ended at this subscription: the next starts after it

    def busy(self) -> dict[int, int]:
        with self._lock:
            return {sid: n for sid, n in self._counts.items() if n > 0}

    def add(self, subscription_ids) -> None:
        with self._lock:
            for sid in subscription_ids:
                self._counts[sid] = self._counts.get(sid, 0) + 1

    def done(self, subscription_id: int) -> None:
        with self._lock:
            left = self._counts.get(subscription_id, 0) - 1
            if left > 0:
                self._counts[subscription_id] = left
            else:
                self._counts.pop(subscription_id, None)


in_flight = InFlight()


def _claim(now: datetime, limit: int) -> list[Claimed]:
    """Claim and count as in flight (``in_flight``): the caller marks each one done when its request ends."""
    with in_flight.claim_lock, connection.cursor() as cursor:
        busy = [{"s": sid, "n": n} for sid, n in in_flight.busy().items()]
        cursor.execute(
            CLAIM_SQL,
            {"now": now, "limit": limit, "cap": max_in_flight(), "busy": json.dumps(busy), "after": in_flight.turn},
        )
        claimed = [Claimed(*row) for row in cursor.fetchall()]
        in_flight.add(c.subscription_id for c in claimed)
        in_flight.turn = claimed[-1].subscription_id if len(claimed) >= limit else 0
    return claimed


def batch_size() -> int:
    return max(1, int(settings.WEBHOOK_WORKER_BATCH))


def deliver_due(*, now: datetime | None = None, limit: int | None = None) -> int:
    """One pass: claim, send and record up to ``limit`` (``WEBHOOK_WORKER_BATCH``) due messages; returns how
    many were attempted. The requests go out together on the process's HTTP threads (``WEBHOOK_HTTP_THREADS``),
    over kept connections (``connection_pool``).

    ``now`` is the clock for the due check, the signatures and the retry times (tests move it).
    """
    now = now or timezone.now()
    limit = batch_size() if limit is None else limit
    outbox_fan_out()
    with transaction.atomic():
        claimed = _claim(now, limit)
        if not claimed:
            return 0
        jobs = []  # a claimed message is in flight until its job ends; one never submitted, until this pass fails
        try:
            subscriptions = Subscription.objects.in_bulk({c.subscription_id for c in claimed})
            signers = {pk: Webhook(s.secret) for pk, s in subscriptions.items()}
            bodies = events_render(events=Event.objects.filter(pk__in={c.event_id for c in claimed}))
            for message in claimed:
                subscription, body = subscriptions[message.subscription_id], bodies[message.event_id]
                headers = signed_headers(
                    secret=subscription.secret,
                    webhook_id=message.webhook_id,
                    body=body,
                    at=now,
                    signer=signers[subscription.pk],
                )
                job = _pool().submit(http_send, url=subscription.url, body=body, headers=headers)
                jobs.append(job)
                job.add_done_callback(lambda _, sid=subscription.pk: in_flight.done(sid))
        finally:
            for message in claimed[len(jobs) :]:
                in_flight.done(message.subscription_id)
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
    held, released = [], []
    for message, outcome in zip(claimed, outcomes, strict=True):
        attempts = message.attempt_count + 1
        ordered = {"id": message.id, "s": message.subscription_id, "p": message.profile_id}
        if outcome.succeeded:
            succeeded.add(message.subscription_id)
            updates.append({"id": message.id, "state": "delivered", "next_at": None, "delivered_at": now.isoformat()})
        else:
            failed.add(message.subscription_id)
            if outcome.status_code == 410:
                gone.add(message.subscription_id)
            if outcome.status_code == 410 or message.manual or attempts >= len(schedule):
                updates.append({"id": message.id, "state": "failed", "next_at": None, "delivered_at": None})
            else:
                next_at = (now + timedelta(seconds=schedule[attempts])).isoformat()
                updates.append({"id": message.id, "state": "pending", "next_at": next_at, "delivered_at": None})
                if message.profile_id is not None:
                    held.append({**ordered, "next_at": next_at})
                continue
        # Only a message attempted before (or resent) can have later ones held behind it.
        if message.profile_id is not None and (message.attempt_count or message.manual):
            released.append(ordered)
    states, durations = [u["state"] for u in updates], [o.duration_ms for o in outcomes]
    transaction.on_commit(lambda: deliveries_count(states=states, durations_ms=durations))
    with connection.cursor() as cursor:
        cursor.execute(UPDATE_SQL, [json.dumps(updates)])
        if held:
            cursor.execute(HOLD_SQL, [json.dumps(held)])
        if released:
            cursor.execute(RELEASE_SQL, [now, json.dumps(released)])
    _subscriptions_health(now, succeeded=succeeded, failed=failed - succeeded, gone=gone)


def _subscriptions_health(now, *, succeeded: set[int], failed: set[int], gone: set[int]) -> None:
    """A success ends a failing streak; a first failure starts one; 410 or a streak too long disables."""
    if succeeded:
        Subscription.objects.filter(pk__in=succeeded, failing_since__isnull=False).update(failing_since=None)
    if failed:
        Subscription.objects.filter(pk__in=failed, failing_since__isnull=True).update(failing_since=now)
        limit = timedelta(seconds=settings.WEBHOOK_DISABLE_AFTER_SECONDS)
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
            SELECT min(d.next_attempt_at) FROM webhooks_subscription s
            CROSS JOIN LATERAL (
                SELECT m.next_attempt_at FROM webhooks_message m
                WHERE m.subscription_id = s.id AND m.state = 'pending' AND m.next_attempt_at IS NOT NULL
                ORDER BY m.next_attempt_at LIMIT 1
            ) AS d
            WHERE s.enabled
            """
        )
        earliest = cursor.fetchone()[0]
    if earliest is None:
        return None
    return max(0.0, (earliest - now).total_seconds())
