"""Synerise's request bodies as DRF serializers: each validates a body's shape and documents it (OpenAPI).

The rules about values (identifier formats, empty strings, dates, countries, attribute types) are the
services'; these check the shape: which keys, which JSON types.
"""

from __future__ import annotations

from rest_framework import serializers

from crm.serializers import AnyObject, StrictBoolean, StrictSerializer, Text, TextOrInteger
from profiles.services import ProfileInput

IDENTIFIER_KEYS = {"email": "email", "phone": "phone", "customId": "customId", "uuid": "uuid"}
FIELD_KEYS = {
    "firstName": "first_name",
    "lastName": "last_name",
    "displayName": "display_name",
    "company": "company",
    "address": "address",
    "city": "city",
    "province": "province",
    "zipCode": "zip_code",
    "countryCode": "country_code",
    "birthDate": "birth_date",
    "sex": "sex",
    "avatarUrl": "avatar_url",
}
SEXES = ["FEMALE", "MALE", "NOT_SPECIFIED", "OTHER"]


def _text(help_text: str = "", **kwargs) -> Text:
    return Text(required=False, allow_null=True, help_text=help_text, **kwargs)


class ProfileWriteSerializer(StrictSerializer):
    """One profile to create or update. Send only what changes; ``null`` resets a field or deletes an attribute."""

    read_only_keys = frozenset({"clientId", "anonymous", "previousClients", "lastActivityDate", "tags"})

    email = _text("E-mail address (trimmed and lower-cased).")
    phone = _text("Phone number; E.164, or national in PHONE_DEFAULT_REGION.")
    customId = TextOrInteger(required=False, allow_null=True, help_text="Your own customer id.")
    uuid = _text("A uuid of the visitor.")
    firstName = _text()
    lastName = _text()
    displayName = _text()
    company = _text()
    address = _text()
    city = _text()
    province = _text()
    zipCode = _text()
    countryCode = _text("ISO 3166-1 alpha-2.")
    birthDate = _text("YYYY-MM-DD.")
    sex = _text(" | ".join(SEXES))
    avatarUrl = _text("An http or https URL.")
    agreements = serializers.DictField(
        child=StrictBoolean(), required=False, allow_null=True, help_text="Agreement key → granted (true/false)."
    )
    attributes = AnyObject(required=False, allow_null=True, help_text="Custom attributes; null deletes one.")

    def profile_input(self) -> ProfileInput:
        data = ProfileInput()
        for key, value in self.validated_data.items():
            if key in IDENTIFIER_KEYS:
                data.identifiers[IDENTIFIER_KEYS[key]] = value
            elif key in FIELD_KEYS:
                data.fields[FIELD_KEYS[key]] = value
            elif key == "attributes" and value is not None:
                data.attributes = dict(value)
            elif key == "agreements" and value is not None:
                data.agreements = dict(value)
        return data


def profile_input(body) -> ProfileInput:
    """Validate one profile body (raising DRF's ValidationError naming the field) and translate it."""
    serializer = ProfileWriteSerializer(data=body)
    serializer.is_valid(raise_exception=True)
    return serializer.profile_input()


class LoginSerializer(StrictSerializer):
    apiKey = Text(allow_blank=False, help_text="An API key's secret.")
