"""Platform services: API keys and their tokens."""

import secrets
import threading
import time
from datetime import timedelta

import jwt
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q
from django.utils import timezone

from crm.errors import Unauthorized, ValidationFailed
from crm.models import ApiKey, IdempotencyRecord, Job, RateLimitCounter, Scope, hash_secret
from crm.ratelimit import validate_rate

JWT_ALGORITHM = "HS256"
JWT_AUDIENCE = "crm-api"


def api_key_create(*, name: str, scopes: list[str], created_by=None, rate_limit: str = "") -> tuple[ApiKey, str]:
    """Create a key and return it with its secret, which is not stored and cannot be shown again."""
    rate_limit = (rate_limit or "").strip()
    try:
        validate_rate(rate_limit)
    except DjangoValidationError as exc:
        raise ValidationFailed(exc.messages[0], field="rate_limit") from None
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("An API key needs a name.", field="name")
    unknown = sorted(set(scopes) - set(Scope.values))
    if unknown or not scopes:
        raise ValidationFailed(
            f"Scopes must be a non-empty subset of {', '.join(Scope.values)}; got {', '.join(scopes) or 'none'}.",
            field="scopes",
        )
    prefix = secrets.token_hex(ApiKey.PREFIX_LENGTH // 2)
    secret = f"crm_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        name=name,
        prefix=prefix,
        secret_hash=hash_secret(secret),
        scopes=list(dict.fromkeys(scopes)),
        created_by=created_by,
        rate_limit=rate_limit,
    )
    return key, secret


class _KeyCache:
    """Keys this process checked recently, by the hash of their secret, for ``API_KEY_CACHE_SECONDS``.

    A key deactivated (or its scopes changed) elsewhere stops working, or changes, in this process
    within that time at most; 0 turns the cache off. Only hashes are kept, never secrets.
    """

    MAX_ENTRIES = 4096

    def __init__(self):
        self._entries: dict[str, tuple[float, ApiKey]] = {}
        self._lock = threading.Lock()

    def get(self, digest: str) -> ApiKey | None:
        entry = self._entries.get(digest)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, digest: str, key: ApiKey) -> None:
        ttl = settings.API_KEY_CACHE_SECONDS
        if ttl <= 0:
            return
        with self._lock:
            if len(self._entries) >= self.MAX_ENTRIES:
                self._entries.clear()
            self._entries[digest] = (time.monotonic() + ttl, key)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


api_key_cache = _KeyCache()


def api_key_authenticate(*, secret: str) -> ApiKey | None:
    """The active key whose secret this is, or None. Records the last-used time (coarsely)."""
    prefix = ApiKey.prefix_of(secret)
    if not prefix:
        return None
    digest = hash_secret(secret)
    key = api_key_cache.get(digest)
    if key is None:
        # The prefix is unique: no ORDER BY needed.
        key = next(iter(ApiKey.objects.filter(prefix=prefix, is_active=True)[:1]), None)
        if key is None or not secrets.compare_digest(key.secret_hash, digest):
            return None
        api_key_cache.put(digest, key)
    _touch(key)
    return key


def _touch(key: ApiKey) -> None:
    now = timezone.now()
    resolution = timedelta(seconds=settings.API_KEY_LAST_USED_RESOLUTION_SECONDS)
    if key.last_used_at is None or now - key.last_used_at >= resolution:
        # A conditional UPDATE so concurrent requests do not all write.
        ApiKey.objects.filter(pk=key.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - resolution)
        ).update(last_used_at=now)
        key.last_used_at = now


def api_key_token_issue(*, secret: str) -> str:
    """Exchange an API key for a short-lived signed JWT usable as a Bearer token."""
    key = api_key_authenticate(secret=secret)
    if key is None:
        raise Unauthorized("Unknown or inactive API key.", field="apiKey", code="invalid_api_key")
    now = timezone.now()
    claims = {
        "sub": str(key.pk),
        "kid": key.prefix,
        "aud": JWT_AUDIENCE,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=settings.JWT_LIFETIME_SECONDS)).timestamp()),
    }
    return jwt.encode(claims, _jwt_key(), algorithm=JWT_ALGORITHM)


def api_key_from_token(*, token: str) -> ApiKey | None:
    """The key a valid, unexpired JWT was issued for; None for anything else."""
    try:
        claims = jwt.decode(
            token, _jwt_key(), algorithms=[JWT_ALGORITHM], audience=JWT_AUDIENCE, options={"require": ["exp", "sub"]}
        )
    except jwt.PyJWTError:
        return None
    key = ApiKey.objects.filter(pk=claims["sub"], prefix=claims.get("kid"), is_active=True).first()
    if key is not None:
        _touch(key)
    return key


def _jwt_key() -> str:
    # A key derived from SECRET_KEY, so tokens signed here mean nothing to other SECRET_KEY users.
    return hash_secret("jwt:" + settings.SECRET_KEY)


def api_keys_deactivate(*, ids: list[int]) -> int:
    """Deactivate keys: their secrets and the tokens issued for them stop working in this process at once,
    in other processes within ``API_KEY_CACHE_SECONDS``. Returns how many."""
    count = ApiKey.objects.filter(pk__in=ids, is_active=True).update(is_active=False)
    api_key_cache.clear()
    return count


def expired_purge() -> dict[str, int]:
    """Delete what has outlived its retention: Idempotency-Key records (``IDEMPOTENCY_TTL_SECONDS``), finished
    jobs and finished task results (``JOB_RETENTION_DAYS``). Returns how many rows of each went."""
    from django_tasks_db.models import DBTaskResult

    now = timezone.now()
    job_cutoff = now - timedelta(days=settings.JOB_RETENTION_DAYS)
    idempotency, _ = IdempotencyRecord.objects.filter(
        created_at__lt=now - timedelta(seconds=settings.IDEMPOTENCY_TTL_SECONDS)
    ).delete()
    jobs, _ = Job.objects.filter(status__in=[Job.Status.DONE, Job.Status.FAILED], finished_at__lt=job_cutoff).delete()
    results, _ = DBTaskResult.objects.finished().filter(finished_at__lt=job_cutoff).delete()
    # Rate-limit windows are at most a day long: anything older than two days is over.
    RateLimitCounter.objects.filter(window_start__lt=now.timestamp() - 2 * 86400).delete()
    return {"idempotencyRecords": idempotency, "jobs": jobs, "taskResults": results}
