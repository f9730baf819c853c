"""Encryption at rest for the secrets we must use again (webhook and integration secrets, SFTP passwords).

Secrets we only check (API keys, passwords) are hashed instead, never stored here.

`secret_encrypt` / `secret_decrypt` use Fernet (AES-128-CBC with an HMAC-SHA256, from `cryptography`).
The key comes from `FIELD_ENCRYPTION_KEYS` (comma-separated; the first encrypts, every one decrypts, so a
key can be rotated by putting the new one first), else from a key derived from `SECRET_KEY`.
`EncryptedTextField` is a model field that stores the token and hands the plain text to Python.
"""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

__all__ = ["EncryptedTextField", "InvalidToken", "secret_decrypt", "secret_encrypt"]


def _derived_key(secret_key: str) -> bytes:
    digest = hashlib.sha256(b"crm.crypto.field-encryption:" + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest)


def _fernet() -> MultiFernet:
    keys = list(settings.FIELD_ENCRYPTION_KEYS or ())
    if not keys:
        keys = [_derived_key(settings.SECRET_KEY)]
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS must hold 32-byte url-safe base64 keys (Fernet.generate_key())"
        ) from exc


def secret_encrypt(plain: str) -> str:
    return _fernet().encrypt(plain.encode()).decode()


def secret_decrypt(token: str) -> str:
    """The plain text; raises `InvalidToken` when no configured key opens it."""
    return _fernet().decrypt(token.encode()).decode()


class EncryptedTextField(models.TextField):
    """A text column that holds a Fernet token; Python code sees the plain text.

    Not searchable or orderable by its value (each encryption is salted); empty strings stay empty.
    """

    def from_db_value(self, value, expression, connection):
        if value in (None, ""):
            return value
        return secret_decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value in (None, ""):
            return value
        return secret_encrypt(value)
