"""Normalisation of identifier values, applied before every write and every lookup."""

import functools
import re
import uuid as uuid_lib
from urllib.parse import urlsplit

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.signals import setting_changed
from django.core.validators import validate_email
from django.dispatch import receiver

from crm import outbound
from crm.errors import ValidationFailed
from profiles.models import IdentifierKind

MAX_LENGTHS = {IdentifierKind.EMAIL: 320, IdentifierKind.CUSTOM_ID: 255, IdentifierKind.PHONE: 64}


@functools.cache
def _junk() -> tuple[frozenset[str], int]:
    """The placeholder values (lower case) and the longest one's length, read from the settings once."""
    values = frozenset(value.strip().lower() for value in settings.IDENTIFIER_JUNK_VALUES)
    return values, max(map(len, values), default=0)


@receiver(setting_changed)
def _settings_changed(*, setting, **kwargs):
    if setting == "IDENTIFIER_JUNK_VALUES":
        _junk.cache_clear()


def _reject_junk(kind: str, value) -> str:
    if not isinstance(value, str):
        raise ValidationFailed(f"{kind} must be a string.", field=kind, code="identifier.type")
    stripped = value.strip()
    if not stripped:
        raise ValidationFailed(f"{kind} must not be empty.", field=kind, code="identifier.empty")
    junk, longest = _junk()
    if len(stripped) <= longest and stripped.lower() in junk:
        raise ValidationFailed(
            f"{kind} '{stripped}' is a placeholder, not an identifier.", field=kind, code="identifier.junk"
        )
    limit = MAX_LENGTHS.get(kind)
    if limit and len(stripped) > limit:
        raise ValidationFailed(f"{kind} is longer than {limit} characters.", field=kind, code="identifier.too_long")
    return stripped


def normalize_email(value) -> str:
    email = _reject_junk(IdentifierKind.EMAIL, value).lower()
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationFailed(
            f"email '{email}' is not a valid e-mail address.", field="email", code="email.invalid"
        ) from None
    return email


@functools.lru_cache(maxsize=65536)
def _e164(raw: str, region: str) -> str | None:
    """Parsing and validating a number is the dearest step of a write (~0.1 ms): batches and daily
    uploads send the same numbers again, so results are kept."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_phone(value) -> str:
    raw = _reject_junk(IdentifierKind.PHONE, value)
    e164 = _e164(raw, settings.PHONE_DEFAULT_REGION)
    if e164 is None:
        raise ValidationFailed(f"phone '{raw}' is not a valid phone number.", field="phone", code="phone.invalid")
    return e164


_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def normalize_uuid(value) -> str:
    raw = _reject_junk(IdentifierKind.UUID, value)
    if _CANONICAL_UUID.fullmatch(raw):
        return raw  # already canonical: what str(UUID(raw)) would give
    try:
        return str(uuid_lib.UUID(raw))
    except ValueError:
        raise ValidationFailed(f"uuid '{raw}' is not a valid UUID.", field="uuid", code="uuid.invalid") from None


def normalize_custom_id(value) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return _reject_junk(IdentifierKind.CUSTOM_ID, value)


NORMALIZERS = {
    IdentifierKind.EMAIL.value: normalize_email,
    IdentifierKind.PHONE.value: normalize_phone,
    IdentifierKind.UUID.value: normalize_uuid,
    IdentifierKind.CUSTOM_ID.value: normalize_custom_id,
}


def identifier_normalize(kind: str, value) -> str:
    """The canonical form of an identifier value, or ValidationFailed naming the identifier."""
    normalizer = NORMALIZERS.get(kind)
    if normalizer is None:
        raise ValidationFailed(f"Unknown identifier kind '{kind}'.", field="identifier")
    return normalizer(value)


def avatar_url_validate(value: str) -> str:
    """An avatar URL: absolute http or https only (``javascript:``, ``data:``, ``file:`` … would be rendered)."""
    limit = 1024
    parsed = urlsplit(value)
    if parsed.scheme.lower() not in ("http", "https") or not parsed.netloc:
        raise ValidationFailed("avatarUrl must be an http or https URL.", field="avatarUrl", code="field.url")
    if len(value) > limit:
        raise ValidationFailed(
            f"avatarUrl is longer than {limit} characters.", field="avatarUrl", code="field.too_long"
        )
    try:
        host = parsed.hostname or ""
    except ValueError:
        host = ""
    if not outbound.host_public_without_dns(host):
        # The card loads it in the marketer's browser: no loopback, private or link-local (cloud metadata) address,
        # by the outbound targets' address rules; a name is not resolved here.
        raise ValidationFailed(
            "avatarUrl must point to a public host, not a loopback, private, link-local or local-network address.",
            field="avatarUrl",
            code="field.url",
        )
    return value
