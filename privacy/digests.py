"""Keyed one-way digests of identifiers: what the tombstone log and the uuid tombstones hold instead of values.

HMAC-SHA256 with ``ERASURE_LOG_KEY`` (a setting kept outside the database; by default derived from
``SECRET_KEY``, which lives outside it too): without the key nobody can test guessed e-mails against them.
"""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings


def erasure_key() -> bytes:
    configured = settings.ERASURE_LOG_KEY
    if configured:
        return configured.encode()
    return hmac.new(settings.SECRET_KEY.encode(), b"crm-erasure-log-key", hashlib.sha256).digest()


def identifier_digest(kind: str, value: str, *, key: bytes | None = None) -> str:
    """The digest of one normalised identifier (kind and value both keyed, so one e-mail gives one digest)."""
    return hmac.new(key or erasure_key(), f"{kind}\x00{value}".encode(), hashlib.sha256).hexdigest()
