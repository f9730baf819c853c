"""Rate limits: fixed windows counted where every process sees them (PostgreSQL, or Redis with ``REDIS_URL``).

A rate is written ``N/unit`` (``600/min``, ``10/s``, ``5000/hour``, ``100000/day``). Each API key has one
(its own, else ``API_RATE_LIMIT``); login and the consent pages are limited per client IP. Answers carry
the ``RateLimit-Policy`` and ``RateLimit`` fields of the IETF draft (draft-ietf-httpapi-ratelimit-headers:
``"name";q=<quota>;w=<window seconds>`` and ``"name";r=<remaining>;t=<seconds to reset>``); a refused
request gets 429 with ``Retry-After``.
"""

from __future__ import annotations

import ipaddress
import math
import re
import threading
import time
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection

from crm.metrics import rate_limit_rejected

UNITS = {
    "s": 1, "sec": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
}  # fmt: skip
_RATE = re.compile(r"\s*(\d{1,9})\s*/\s*([a-z]+)\s*")


@dataclass(frozen=True)
class Rate:
    limit: int
    window: int  # seconds

    @classmethod
    def parse(cls, text: str) -> Rate:
        return _parse_rate(text)


# Every API request parses its key's rate: the few distinct texts are parsed once each (a Rate is immutable).
@lru_cache(maxsize=256)
def _parse_rate(text: str) -> Rate:
    match = _RATE.fullmatch((text or "").lower())
    if not match or match.group(2) not in UNITS or int(match.group(1)) < 1:
        raise ValueError(f"'{text}' is not a rate: write N/unit with unit s, min, hour or day (e.g. 600/min).")
    return Rate(int(match.group(1)), UNITS[match.group(2)])


def validate_rate(value: str) -> None:
    """Model/form validator of a rate written ``N/unit``."""
    if value:
        try:
            Rate.parse(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


@dataclass(frozen=True)
class Decision:
    allowed: bool
    policy: str
    rate: Rate
    remaining: int
    reset: int  # seconds until the window ends

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Policy": f'"{self.policy}";q={self.rate.limit};w={self.rate.window}',
            "RateLimit": f'"{self.policy}";r={self.remaining};t={self.reset}',
        }


def rate_limit_hit(*, bucket: str, rate: Rate, policy: str) -> Decision:
    """Count one request in ``bucket``'s current window and say whether it is within ``rate``."""
    now = time.time()
    start = int(now // rate.window) * rate.window
    count = _local.hit(bucket, start, rate, now)
    reset = max(1, math.ceil(start + rate.window - now))
    if count > rate.limit:
        rate_limit_rejected(policy)
    return Decision(
        allowed=count <= rate.limit, policy=policy, rate=rate, remaining=max(0, rate.limit - count), reset=reset
    )


class _LocalBatches:
    """Requests counted in the process and sent to the shared counter in batches, so most requests do not wait
    for a round trip. A batch is at most 1 % of the limit (small limits are counted exactly, request by
    request) and at most ``RATE_LIMIT_FLUSH_SECONDS`` old; a process can overshoot a limit by at most one
    batch. The answer is the shared count last seen plus what this process has not sent yet."""

    def __init__(self):
        self._pending: dict[tuple[str, int], list] = {}  # (bucket, start) -> [unsent, shared count, last flush]
        self._lock = threading.Lock()

    def hit(self, bucket: str, start: int, rate: Rate, now: float) -> int:
        batch = min(50, rate.limit // 100)
        if batch <= 1:
            return _backend().incr(bucket, start, rate.window)
        key = (bucket, start)
        with self._lock:
            if len(self._pending) > 10_000:
                self._pending = {k: v for k, v in self._pending.items() if k[1] >= start - rate.window}
            entry = self._pending.setdefault(key, [0, 0, 0.0])
            entry[0] += 1
            if entry[0] < batch and now - entry[2] < settings.RATE_LIMIT_FLUSH_SECONDS:
                return entry[1] + entry[0]
            unsent, entry[0], entry[2] = entry[0], 0, now
        shared = _backend().incr(bucket, start, rate.window, by=unsent)
        with self._lock:
            entry[1] = max(entry[1], shared)
            return entry[1] + entry[0]


_local = _LocalBatches()


class DatabaseCounter:
    """One row per bucket and window; one INSERT … ON CONFLICT per request (outside any transaction of the view),
    into an unlogged table (no WAL flush per request). Old windows are deleted by the recurring purge."""

    def incr(self, bucket: str, start: int, window: int, *, by: int = 1) -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO crm_ratelimitcounter (bucket, window_start, count) VALUES (%s, %s, %s)
                ON CONFLICT (bucket, window_start) DO UPDATE SET count = crm_ratelimitcounter.count + EXCLUDED.count
                RETURNING count
                """,
                [bucket[:200], start, by],
            )
            return cursor.fetchone()[0]


class RedisCounter:
    def __init__(self, url: str):
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)

    def incr(self, bucket: str, start: int, window: int, *, by: int = 1) -> int:
        key = f"crm:rl:{bucket}:{start}"
        pipe = self.client.pipeline()
        pipe.incrby(key, by)
        pipe.expire(key, window + 1, nx=True)
        count, _ = pipe.execute()
        return int(count)


@lru_cache(maxsize=4)
def _counter(redis_url: str):
    return RedisCounter(redis_url) if redis_url else DatabaseCounter()


def _backend():
    return _counter(settings.REDIS_URL or "")


def client_address(request) -> str | None:
    """The client's address: REMOTE_ADDR, or behind our own proxy (``BEHIND_PROXY``) the last hop it appended
    (earlier hops are client-supplied); None when it is not an IP address."""
    candidate = request.META.get("REMOTE_ADDR", "")
    if settings.SECURE_PROXY_SSL_HEADER and (forwarded := request.META.get("HTTP_X_FORWARDED_FOR")):
        candidate = forwarded.split(",")[-1].strip()
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None


def client_ip(request) -> str:
    """The client's address as a rate-limit bucket name (``unknown`` when there is none)."""
    return client_address(request) or "unknown"


def login_client_ip(request) -> str | None:
    """The client's address for django-axes (None when there is none, as in a request built by hand)."""
    return client_address(request)


def ip_rate_limit_hit(request, *, setting: str, policy: str) -> Decision | None:
    """Count a request against the per-IP rate in ``settings.<setting>`` (None when that is empty: no limit)."""
    text = getattr(settings, setting)
    if not text:
        return None
    return rate_limit_hit(bucket=f"{policy}:{client_ip(request)}", rate=Rate.parse(text), policy=policy)


def auth_failure_count(request) -> Decision | None:
    """Count one failed authentication from the client's address (None when the limit is off)."""
    if not (text := settings.AUTH_FAILURE_RATE_LIMIT):
        return None
    return rate_limit_hit(bucket=f"auth-failure:{client_ip(request)}", rate=Rate.parse(text), policy="auth")


def ip_rate_limited(setting: str):
    """Decorate a plain Django view: count each request per client IP against ``settings.<setting>``; over the
    limit, 429 (plain text) with ``Retry-After``. Every answer carries the rate-limit fields."""
    from functools import wraps

    from django.http import HttpResponse

    def decorate(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            decision = ip_rate_limit_hit(request, setting=setting, policy="ip")
            if decision is not None and not decision.allowed:
                response = HttpResponse(
                    "Too many requests from your address; try again shortly.\n",
                    status=429,
                    content_type="text/plain; charset=utf-8",
                )
                response["Retry-After"] = str(decision.reset)
            else:
                response = view(request, *args, **kwargs)
            if decision is not None:
                for name, value in decision.headers().items():
                    response[name] = value
            return response

        return wrapper

    return decorate
