"""Translation between Synerise's profile JSON and the services' terms."""

from __future__ import annotations

from collections.abc import Iterable

from crm.errors import ValidationFailed
from profiles.fields import EDITABLE_API_NAMES, EDITABLE_BY_API_NAME
from profiles.models import Profile
from profiles.selectors import ProfileExtras, profile_with_extras, profiles_with_extras
from profiles.services import ProfileInput

IDENTIFIER_KEYS = {"email": "email", "phone": "phone", "customId": "customId", "uuid": "uuid"}
FIELD_KEYS = EDITABLE_BY_API_NAME  # API name → column, every editable native field of the model
DOCUMENT_ORDER = {
    name: i
    for i, name in enumerate(
        (
            "previousClients", "clientId", "email", "phone", "customId", "uuid", "firstName", "lastName",
            "displayName", "company", "address", "city", "province", "zipCode", "countryCode", "birthDate",
            "lastActivityDate", "sex", "avatarUrl", "anonymous", "agreements", "attributes", "tags",
        )
    )
}  # fmt: skip
READ_ONLY_KEYS = {"clientId", "anonymous", "previousClients", "lastActivityDate", "tags"}


def parse_profile(body, *, prefix: str = "") -> ProfileInput:
    """A Synerise profile body → ProfileInput. Shape errors name the field."""
    if not isinstance(body, dict):
        raise ValidationFailed(
            "The body must be a JSON object describing one profile.", field=prefix.rstrip(".") or "body"
        )
    data = ProfileInput()
    for key, value in body.items():
        where = f"{prefix}{key}"
        if key in IDENTIFIER_KEYS:
            if value is not None and not isinstance(value, str) and not (key == "customId" and _is_int(value)):
                raise ValidationFailed(f"{key} must be a string.", field=where, code="field.type")
            data.identifiers[IDENTIFIER_KEYS[key]] = value
        elif key in FIELD_KEYS:
            if value is not None and not isinstance(value, str):
                raise ValidationFailed(f"{key} must be a string or null.", field=where, code="field.type")
            data.fields[FIELD_KEYS[key]] = value
        elif key == "attributes":
            if value is None:
                continue
            if not isinstance(value, dict):
                raise ValidationFailed("attributes must be an object.", field=where, code="field.type")
            data.attributes = value
        elif key == "agreements":
            if value is None:
                continue
            if not isinstance(value, dict) or not all(isinstance(v, bool) for v in value.values()):
                raise ValidationFailed(
                    "agreements must be an object of agreement names and true/false.", field=where, code="field.type"
                )
            data.agreements = value
        elif key in READ_ONLY_KEYS:
            raise ValidationFailed(f"{key} is read-only.", field=where, code="field.read_only")
        else:
            raise ValidationFailed(f"Unknown field '{key}'.", field=where, code="field.unknown")
    return data


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _iso(value) -> str | None:
    if value is None:
        return None
    return value.isoformat(timespec="seconds").replace("+00:00", "Z")


def _native(profile: Profile, column: str):
    if column == "avatar_url":
        return profile.gravatar_url
    value = getattr(profile, column)
    return value.isoformat() if hasattr(value, "isoformat") else value


def profile_document(
    profile: Profile,
    *,
    agreements: dict[str, bool],
    tags: list | None = None,
    previous: list[int] | None = None,
    custom_agreements: dict[str, bool] | None = None,
) -> dict:
    """One profile as seed 000's JSON: every field, same names and types."""
    document = {
        "previousClients": previous or [],
        "clientId": profile.pk,
        "email": profile.email,
        "phone": profile.phone,
        "customId": profile.custom_id,
        "uuid": profile.uuid,
        **{name: _native(profile, column) for column, name in EDITABLE_API_NAMES.items()},
        "lastActivityDate": _iso(profile.last_activity_date),
        "anonymous": profile.anonymous,
        "agreements": agreements,
        "attributes": {
            **profile.attributes,
            **(custom_agreements or {}),  # custom agreements are attributes in Synerise (seed 002)
            "eventCreateTime": profile.created_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "correlationId": profile.correlation_id,
        },
        "tags": tags or [],
    }
    # The seed's key order (native fields added to the model later come after avatarUrl).
    return dict(sorted(document.items(), key=lambda item: DOCUMENT_ORDER.get(item[0], DOCUMENT_ORDER["avatarUrl"])))


def _document(profile: Profile, extras: ProfileExtras) -> dict:
    return profile_document(
        profile,
        agreements=extras.agreements,
        custom_agreements=extras.custom_agreements,
        previous=extras.previous_clients,
        tags=extras.tags,
    )


def profile_documents(profiles: Iterable[Profile]) -> list[dict]:
    """Many profiles as documents, read fresh with their extras in one query."""
    return profile_documents_by_ids([p.pk for p in profiles])


def profile_documents_by_ids(ids: list[int]) -> list[dict]:
    return [_document(profile, extras) for profile, extras in profiles_with_extras(ids)]


def profile_document_by_identifier(*, kind: str, value) -> dict:
    """One profile by an identifier or clientId, in one query (the hot path of every GET)."""
    return _document(*profile_with_extras(kind=kind, value=value))
