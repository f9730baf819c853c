"""The canonical profile document: the JSON every read, list, export and webhook body renders a profile as (the
platform API's shape, which is Synerise's). Its OpenAPI description is ``api.documents.ProfileDocumentSerializer``."""

from __future__ import annotations

from collections.abc import Iterable

from profiles.fields import DOCUMENT_KEYS, EDITABLE_API_NAMES
from profiles.models import Profile
from profiles.selectors import ProfileExtras, profile_from_snapshot, profile_with_extras, profiles_with_extras

DOCUMENT_ORDER = {name: i for i, name in enumerate(DOCUMENT_KEYS)}


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
    """One profile as the Synerise documentation's JSON: every field, same names and types."""
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
            **(custom_agreements or {}),  # custom agreements are attributes in Synerise (Synerise's documentation)
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
    return [_document(profile, extras) for profile, extras in profiles_with_extras(ids=ids)]


def profile_document_from_snapshot(snapshot: str) -> dict:
    """The document of a profile as ``profiles.selectors.profile_snapshots_sql`` captured it (the same rendering as
    every read's, from the same columns and extras)."""
    return _document(*profile_from_snapshot(snapshot=snapshot))


def profile_document_by_identifier(*, kind: str, value) -> dict:
    """One profile by an identifier or clientId, in one query (the hot path of every GET)."""
    return _document(*profile_with_extras(kind=kind, value=value))
