"""Capillary's customer documents (Capillary's ``result``) for the upsert answer."""

from __future__ import annotations

from api.capillary.translation import (
    ATTR_ACCOUNT,
    ATTR_CARD,
    ATTR_LOYALTY,
    ATTR_SOURCE,
    ATTR_STATUS,
    ATTR_VERIFIED,
    CARD,
    CHANNEL_NAMES,
    EXTENDED_NATIVE,
    GENDER_NAMES,
    OWN_ATTRIBUTES,
)
from consents.models import ConsentState, ConsentStatus
from profiles.models import Identifier, IdentifierKind, Profile


def _iso(value) -> str | None:
    return value.isoformat(timespec="seconds").replace("+00:00", "Z") if value else None


def _mobile_out(phone: str) -> str:
    return phone.removeprefix("+")


def _by(key) -> dict | None:
    return {"id": key.pk, "code": key.prefix, "name": key.name, "type": "API_KEY"} if key else None


def documents_for(profile_ids: list[int], *, commerce: dict, key, created: set[int]) -> dict[int, dict]:
    """Per profile, Capillary's ``result``: ``profiles[]`` (identifiers, commChannels, source, accountId,
    attribution), ``loyaltyInfo``, ``extendedFields``, ``cardDetails``; plus ``subscriptionInfo``."""
    profiles = Profile.objects.in_bulk(profile_ids)
    owned: dict[int, list[tuple[str, str]]] = {pid: [] for pid in profile_ids}
    for pid, kind, value in (
        Identifier.objects.filter(profile_id__in=profile_ids)
        .exclude(kind=IdentifierKind.UUID)
        .order_by("profile_id", "kind", "id")
        .values_list("profile_id", "kind", "value")
    ):
        owned[pid].append((kind, value))
    states: dict[int, list[tuple[str, str]]] = {pid: [] for pid in profile_ids}
    for pid, agreement_key, status in (
        ConsentState.objects.filter(profile_id__in=profile_ids, agreement__is_active=True)
        .exclude(status=ConsentStatus.AWAITING)
        .order_by("profile_id", "agreement_id")
        .values_list("profile_id", "agreement__key", "status")
    ):
        states[pid].append((agreement_key, status))
    return {
        pid: _document(profiles[pid], owned[pid], states[pid], commerce[pid], key=key, created=pid in created)
        for pid in profile_ids
        if pid in profiles
    }


_TYPE_NAMES = {"email": "email", "phone": "mobile", "customId": "externalId"}


def _pair(kind: str, value: str) -> dict:
    return {"type": _TYPE_NAMES[kind], "value": _mobile_out(value) if kind == "phone" else value}


def _document(profile: Profile, owned, states, commerce: dict, *, key, created: bool) -> dict:
    attrs = profile.attributes
    main = [
        _pair(kind, getattr(profile, column))
        for kind, column in (("customId", "custom_id"), ("email", "email"), ("phone", "phone"))
        if getattr(profile, column)
    ]
    every = [_pair(kind, value) for kind, value in owned]
    if card := attrs.get(ATTR_CARD):
        main.append({"type": CARD, "value": card})
        every.append({"type": CARD, "value": card})
    verified = set(attrs.get(ATTR_VERIFIED) or [])
    channels = [
        {
            "type": type_,
            "value": _mobile_out(value) if type_ == "mobile" else value,
            "primary": True,
            "verified": f"{type_}:{value}" in verified,
            "meta": {},
            "attributes": {},
        }
        for type_, value in (("mobile", profile.phone), ("email", profile.email))
        if value
    ]
    extended = {name: value for name, value in attrs.items() if name not in OWN_ATTRIBUTES}
    if profile.sex in GENDER_NAMES:
        extended["gender"] = GENDER_NAMES[profile.sex]
    for name, column in EXTENDED_NATIVE.items():
        if column != "sex" and (value := getattr(profile, column)):
            extended[name] = value.isoformat() if hasattr(value, "isoformat") else value
    attribution = {
        "createDate": _iso(profile.created_at),
        "createdBy": _by(key) if created else None,
        "modifiedBy": _by(key),
        "modifiedDate": _iso(profile.updated_at),
    }
    document = {
        "id": profile.pk,
        "profiles": [
            {
                "firstName": profile.first_name,
                "lastName": profile.last_name,
                "attribution": attribution,
                "fields": {},
                "allFields": {},
                "identifiers": main,
                "commChannels": channels,
                "source": attrs.get(ATTR_SOURCE),
                "userId": profile.pk,
                "accountId": attrs.get(ATTR_ACCOUNT),
                "conflictingProfileList": [],
                "autoUpdateTime": _iso(profile.updated_at),
                "identifiersAll": every,
            }
        ],
        "loyaltyInfo": {
            "loyaltyType": attrs.get(ATTR_LOYALTY, "non_loyalty"),
            "attributionV2": {**attribution, "createdFromSource": attrs.get(ATTR_SOURCE)},
            "lifetimePurchases": commerce["totalSpent"],
        },
        "segments": {},
        "associatedWith": key.name if key else "",
        "extendedFields": extended,
        "cardDetails": [{"cardNumber": card, "customerId": profile.pk}] if card else [],
        "subscriptionInfo": {
            "subscriptions": [
                {
                    "channel": CHANNEL_NAMES.get(agreement_key, agreement_key),
                    "type": "OPTIN" if status == ConsentStatus.GRANTED else "OPTOUT",
                    "priority": "BULK",
                }
                for agreement_key, status in states
            ]
        },
    }
    if ATTR_STATUS in attrs:
        document["statusLabel"] = attrs[ATTR_STATUS]
    return document
