"""Translation of Capillary's customer JSON (its shape checked by ``requests.py``) into the services'
terms, with the warnings the answer carries.

Where Capillary's fields have no native home here they are custom attributes, under these names
(see docs/api.md): ``capillarySource``, ``capillaryAccountId``, ``capillaryVerifiedChannels``,
``statusLabel``, ``loyaltyType`` and ``cardNumber``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from crm.errors import DomainError, ValidationFailed
from profiles.models import Sex
from profiles.services import ProfileInput, identifier_normalize
from profiles.services.identity.input import identifiers_given
from profiles.services.surfaces import WriteItem

IDENTIFIER_TYPES = {"email": "email", "mobile": "phone", "externalId": "customId"}
CARD = "cardnumber"
ATTR_SOURCE = "capillarySource"
ATTR_ACCOUNT = "capillaryAccountId"
ATTR_VERIFIED = "capillaryVerifiedChannels"
ATTR_STATUS = "statusLabel"
ATTR_LOYALTY = "loyaltyType"
ATTR_CARD = "cardNumber"
OWN_ATTRIBUTES = {ATTR_SOURCE, ATTR_ACCOUNT, ATTR_VERIFIED, ATTR_STATUS, ATTR_LOYALTY, ATTR_CARD}
LOYALTY_TYPES = ("loyalty", "non_loyalty")
MAX_TEXT = 256
# extendedFields with a native home; the others are custom attributes of the same name.
EXTENDED_NATIVE = {"gender": "sex", "city": "city", "state": "province", "zip": "zip_code", "dob_date": "birth_date"}
GENDERS = {"male": Sex.MALE, "m": Sex.MALE, "female": Sex.FEMALE, "f": Sex.FEMALE, "other": Sex.OTHER}
GENDER_NAMES = {Sex.MALE: "Male", Sex.FEMALE: "Female", Sex.OTHER: "Other"}
# Subscription channels → agreement keys; any other channel is taken as an agreement key itself.
CHANNELS = {"email": "email", "sms": "sms", "mobile": "sms", "ios": "push", "android": "push", "push": "push",
            "mobilepush": "push", "webpush": "webPush", "web_push": "webPush"}  # fmt: skip
CHANNEL_NAMES = {"email": "EMAIL", "sms": "SMS", "push": "PUSH", "webPush": "WEB_PUSH"}
PROFILE_KEYS = {"firstName", "lastName", "identifiers", "commChannels", "source", "accountId", "extendedFields"}
ENTITY_KEYS = {"profiles", "extendedFields", "loyaltyInfo", "statusLabel", "subscriptionInfo"}


@dataclass
class Parsed:
    item: WriteItem
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (code, message)


class _Entity:
    def __init__(self, index: int):
        self.where = f"[{index}]"
        self.data = ProfileInput()
        self.warnings: list[tuple[str, str]] = []
        self.verified: list[str] = []

    def fail(self, name: str, message: str, code: str = "validation_failed"):
        raise ValidationFailed(f"{self.where}.{name}: {message}", field=f"{self.where}.{name}", code=code)

    def warn(self, code: str, message: str) -> None:
        self.warnings.append((code, message))

    def text(self, name: str, value, *, limit: int = MAX_TEXT) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(name, "must be a non-empty string.", "field.type")
        if len(value) > limit:
            self.fail(name, f"is longer than {limit} characters.", "field.too_long")
        return value

    def identifier(self, name: str, kind: str, value: str) -> None:
        value = self.text(name, value, limit=320)
        if kind == "phone":
            value = mobile_in(value)
        current = self.data.identifiers.get(kind)
        if current is not None and current != value:
            self.fail(name, f"a customer holds one {kind}; '{current}' and '{value}' were both sent.")
        self.data.identifiers[kind] = value


def mobile_in(value: str) -> str:
    """Capillary sends mobiles with the country code and no '+': try that first, then the default region."""
    digits = value.strip()
    if digits.isdigit():
        try:
            return identifier_normalize("phone", "+" + digits)
        except DomainError:
            pass
    return value


def parse_entity(raw: dict, index: int) -> Parsed:
    """One element of the request array (a customer: ``profiles[]`` and customer-level fields), its shape checked
    by ``requests.CustomerSerializer``, → WriteItem; the value rules and the warnings are checked here."""
    entity = _Entity(index)
    for k, profile in enumerate(raw["profiles"]):
        _parse_profile(entity, profile, f"profiles[{k}]")
    if extended := raw.get("extendedFields"):
        _parse_extended(entity, extended, "extendedFields")
    if (loyalty := raw.get("loyaltyInfo")) is not None:
        if (loyalty_type := loyalty.get("loyaltyType")) is not None:
            entity.data.attributes[ATTR_LOYALTY] = loyalty_type
        for key in sorted(set(loyalty) - {"loyaltyType"}):
            entity.warn("field.ignored", f"loyaltyInfo.{key} is not stored by this API.")
    if (label := raw.get("statusLabel")) is not None:
        if not isinstance(label, str) or not label.strip() or len(label) > 64:
            entity.fail("statusLabel", "status label invalid: a non-empty string of at most 64 characters.",
                        "status_label.invalid")  # fmt: skip
        entity.data.attributes[ATTR_STATUS] = label.strip()
    if (subscriptions := raw.get("subscriptionInfo")) is not None:
        _parse_subscriptions(entity, subscriptions)
    for key in sorted(set(raw) - ENTITY_KEYS):
        entity.warn("field.ignored", f"{key} is not stored by this API.")
    if entity.verified:
        entity.data.attributes[ATTR_VERIFIED] = sorted(set(entity.verified))
    if not identifiers_given(identifiers=entity.data.identifiers):
        entity.fail(
            "profiles[0].identifiers",
            "at least one identifier of type email, mobile or externalId is required.",
            "identifier.missing",
        )
    return Parsed(item=WriteItem(data=entity.data), warnings=entity.warnings)


def _parse_profile(entity: _Entity, profile: dict, where: str) -> None:
    for j, pair in enumerate(profile["identifiers"]):
        here = f"{where}.identifiers[{j}]"
        type_ = pair["type"]
        if type_ == CARD:
            entity.data.attributes[ATTR_CARD] = entity.text(f"{here}.value", pair.get("value"), limit=64)
        elif type_ in IDENTIFIER_TYPES:
            entity.identifier(f"{here}.value", IDENTIFIER_TYPES[type_], pair.get("value"))
        else:
            entity.fail(
                f"{here}.type",
                f"unknown identifier type {type_!r}; use email, mobile, externalId or cardnumber.",
                "identifier.type_unknown",
            )
    for name, column in (("firstName", "first_name"), ("lastName", "last_name")):
        if (value := profile.get(name)) is not None:
            entity.data.fields[column] = entity.text(f"{where}.{name}", value)
    for j, channel in enumerate(profile.get("commChannels") or []):
        _parse_channel(entity, channel, f"{where}.commChannels[{j}]")
    if (source := profile.get("source")) is not None:
        entity.data.attributes[ATTR_SOURCE] = entity.text(f"{where}.source", source, limit=64)
    if (account := profile.get("accountId")) is not None:
        entity.data.attributes[ATTR_ACCOUNT] = entity.text(f"{where}.accountId", account, limit=128)
    if extended := profile.get("extendedFields"):
        _parse_extended(entity, extended, f"{where}.extendedFields")
    for key in sorted(set(profile) - PROFILE_KEYS):
        entity.warn("field.ignored", f"{where}.{key} is not stored by this API.")


def _parse_channel(entity: _Entity, channel: dict, where: str) -> None:
    type_ = channel["type"]
    if type_ not in ("email", "mobile"):
        entity.warn("field.ignored", f"{where}: channel type {type_!r} is not stored by this API.")
        return
    kind = IDENTIFIER_TYPES[type_]
    value = channel.get("value")
    if value is None:
        entity.fail(f"{where}.value", "is required.", "field.type")
    if kind in entity.data.identifiers:
        known = entity.data.identifiers[kind]
        if (mobile_in(str(value)) if kind == "phone" else value) != known:
            entity.warn("field.ignored", f"{where}: {value!r} differs from the {type_} identifier and is not stored.")
            return
    else:
        entity.identifier(f"{where}.value", kind, value)
    if channel.get("verified"):
        entity.verified.append(f"{type_}:{_normalized(kind, entity.data.identifiers[kind])}")


def _normalized(kind: str, value: str) -> str:
    try:
        return identifier_normalize(kind, value)
    except DomainError:
        return value


def _parse_extended(entity: _Entity, extended: dict, where: str) -> None:
    for name, value in extended.items():
        column = EXTENDED_NATIVE.get(name)
        if column is None:
            entity.data.attributes[name] = value
        elif value is None:
            entity.data.fields[column] = None
        elif column == "sex":
            if not isinstance(value, str) or value.lower() not in GENDERS:
                entity.fail(f"{where}.gender", f"must be Male, Female or Other; got {value!r}.", "field.choice")
            entity.data.fields["sex"] = GENDERS[value.lower()]
        else:
            entity.data.fields[column] = value


def _parse_subscriptions(entity: _Entity, info: dict) -> None:
    for j, sub in enumerate(info["subscriptions"]):
        here = f"subscriptionInfo.subscriptions[{j}]"
        type_, channel = sub["type"], sub["channel"]
        if not channel.strip():
            entity.fail(f"{here}.channel", "is required.", "field.type")
        if str(sub.get("priority", "BULK")).upper() in ("TRANS", "TRANSACTIONAL"):
            entity.warn("subscription.ignored", f"{here}: transactional subscriptions are not marketing consents.")
            continue
        key = CHANNELS.get(channel.strip().lower(), channel.strip())
        entity.data.agreements[key] = type_ == "OPTIN"
