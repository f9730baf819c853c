"""Normalisation of identifier values, applied before every write and every lookup."""

import functools
import uuid as uuid_lib

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from crm.errors import ValidationFailed
from profiles.models import IdentifierKind

MAX_LENGTHS = {IdentifierKind.EMAIL: 320, IdentifierKind.CUSTOM_ID: 255, IdentifierKind.PHONE: 64}


@functools.lru_cache(maxsize=8)
def _junk(values: tuple[str, ...]) -> frozenset[str]:
    return frozenset(value.strip().lower() for value in values)


def _reject_junk(kind: str, value) -> str:
    if not isinstance(value, str):
        raise ValidationFailed(f"{kind} must be a string.", field=kind, code="identifier.type")
    stripped = value.strip()
    if not stripped:
        raise ValidationFailed(f"{kind} must not be empty.", field=kind, code="identifier.empty")
    if stripped.lower() in _junk(tuple(settings.IDENTIFIER_JUNK_VALUES)):
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


def normalize_phone(value) -> str:
    raw = _reject_junk(IdentifierKind.PHONE, value)
    try:
        number = phonenumbers.parse(raw, settings.PHONE_DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise ValidationFailed(f"phone '{raw}' is not a valid phone number.", field="phone", code="phone.invalid")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_uuid(value) -> str:
    raw = _reject_junk(IdentifierKind.UUID, value)
    try:
        return str(uuid_lib.UUID(raw))
    except ValueError:
        raise ValidationFailed(f"uuid '{raw}' is not a valid UUID.", field="uuid", code="uuid.invalid") from None


def normalize_custom_id(value) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return _reject_junk(IdentifierKind.CUSTOM_ID, value)


NORMALIZERS = {
    IdentifierKind.EMAIL: normalize_email,
    IdentifierKind.PHONE: normalize_phone,
    IdentifierKind.UUID: normalize_uuid,
    IdentifierKind.CUSTOM_ID: normalize_custom_id,
}


def identifier_normalize(kind: str, value) -> str:
    """The canonical form of an identifier value, or ValidationFailed naming the identifier."""
    try:
        normalizer = NORMALIZERS[IdentifierKind(kind)]
    except ValueError:
        raise ValidationFailed(f"Unknown identifier kind '{kind}'.", field="identifier") from None
    return normalizer(value)
