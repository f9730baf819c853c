"""``Idempotency-Key`` on POSTs: a repeat within 24 h gets the first answer and changes nothing.

The record is claimed before the view runs (outside its transaction), so a repeat that arrives
while the first request is still running sees it and gets 409; the same key with another body
gets 422. 5xx answers are not kept, so a failed request can be retried with the same key.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpResponse
from django.utils import timezone

from crm.errors import Conflict, DomainError, ValidationFailed
from crm.models import IdempotencyRecord

# A record with no answer after this long belongs to a request that died: a repeat may take over.
STALE_AFTER = timedelta(minutes=10)
REPLAYED_HEADERS = ("Location", "Content-Type")


class Unprocessable(DomainError):
    status = 422
    code = "idempotency.key_reused"


class Replay(Exception):
    """The request repeats an answered one: ``response`` is that answer."""

    def __init__(self, response: HttpResponse):
        super().__init__("replay")
        self.response = response


def request_hash(*, method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(b"\n".join([method.encode(), path.encode(), body])).hexdigest()


def idempotency_begin(*, key: str, scope: str, fingerprint: str) -> IdempotencyRecord:
    """Claim the key for this request, or raise Replay / Conflict (in flight) / Unprocessable (other body)."""
    if not key or len(key) > 255:
        raise ValidationFailed("Idempotency-Key must be 1–255 characters.", field="Idempotency-Key")
    now = timezone.now()
    try:
        with transaction.atomic():
            return IdempotencyRecord.objects.create(key=key, scope=scope, request_hash=fingerprint)
    except IntegrityError:
        pass
    with transaction.atomic():
        record = IdempotencyRecord.objects.select_for_update().get(key=key, scope=scope)
        expired = record.created_at < now - timedelta(seconds=settings.IDEMPOTENCY_TTL_SECONDS)
        stale = record.status_code is None and record.created_at < now - STALE_AFTER
        if expired or stale:
            record.request_hash, record.status_code, record.response_body = fingerprint, None, None
            record.response_headers, record.created_at = {}, now
            record.save()
            return record
        if record.request_hash != fingerprint:
            raise Unprocessable(
                "This Idempotency-Key was used with a different request; use a new key.", field="Idempotency-Key"
            )
        if record.status_code is None:
            raise Conflict(
                "A request with this Idempotency-Key is still being processed; retry later.",
                field="Idempotency-Key",
                code="idempotency.in_flight",
            )
    response = HttpResponse(bytes(record.response_body or b""), status=record.status_code)
    del response["Content-Type"]  # only the first answer's own (a bodiless 202 has none)
    for name, value in record.response_headers.items():
        response[name] = value
    response["Idempotent-Replayed"] = "true"
    raise Replay(response)


def idempotency_finish(*, record: IdempotencyRecord, response) -> None:
    """Keep the answer for repeats; forget the key if the request failed on our side (5xx)."""
    if response.status_code >= 500:
        IdempotencyRecord.objects.filter(pk=record.pk).delete()
        return
    record.status_code = response.status_code
    record.response_body = bytes(response.content)
    record.response_headers = {name: response[name] for name in REPLAYED_HEADERS if response.has_header(name)}
    record.save(update_fields=["status_code", "response_body", "response_headers"])
