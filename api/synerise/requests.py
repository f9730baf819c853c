"""Synerise's request bodies as DRF serializers: each validates a body's shape and documents it (OpenAPI).

The rules about values (identifier formats, empty strings, dates, countries, attribute types) are the
services'; these check the shape: which keys, which JSON types.
"""

from __future__ import annotations

from datetime import datetime

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.serializers import AnyObject, Scalar, StrictBoolean, StrictSerializer, Text, TextOrInteger
from profiles.fields import EDITABLE_BY_API_NAME
from profiles.services import ProfileInput

IDENTIFIER_KEYS = {"email": "email", "phone": "phone", "customId": "customId", "uuid": "uuid"}
FIELD_KEYS = EDITABLE_BY_API_NAME  # API name → column, every editable native field of the model
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
    avatarUrl = _text("An http or https URL to a public host (no loopback, private or link-local address).")
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


# A native field added to the model is accepted (and documented) without a declaration here.
for _name in FIELD_KEYS:
    ProfileWriteSerializer._declared_fields.setdefault(_name, _text())


def profile_input(body) -> ProfileInput:
    """Validate one profile body (raising DRF's ValidationError naming the field) and translate it."""
    serializer = ProfileWriteSerializer(data=body)
    serializer.is_valid(raise_exception=True)
    return serializer.profile_input()


class LoginSerializer(StrictSerializer):
    apiKey = Text(allow_blank=False, help_text="An API key's secret.")


# --- events, notes, tags ----------------------------------------------------------------------------

CLIENT_KINDS = {"id": "clientId", "uuid": "uuid", "email": "email", "customId": "customId", "phone": "phone"}


class ClientRefSerializer(StrictSerializer):
    """The profile an event or an order belongs to: one of id, uuid, email, customId, phone."""

    id = TextOrInteger(required=False, allow_null=True, help_text="clientId")
    uuid = _text()
    email = _text()
    customId = TextOrInteger(required=False, allow_null=True)
    phone = _text()

    class Meta:
        ref_name = "SyneriseClientRef"

    def validate(self, attrs):
        found = {CLIENT_KINDS[key]: value for key, value in attrs.items() if value is not None}
        if not found:
            raise serializers.ValidationError("needs one of: id, uuid, email, customId.", code="field.required")
        return found


@extend_schema_field(OpenApiTypes.DATETIME)
class IsoDateTime(serializers.Field):
    """An ISO 8601 date-time (``Z`` or an offset; without one it is UTC); null is "not sent"."""

    default_error_messages = {
        "invalid": "must be an ISO 8601 date-time string.",
        "unparsable": "is not an ISO 8601 date-time: {value!r}.",
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise serializers.ValidationError(self.error_messages["invalid"], code="field.datetime")
        try:
            return datetime.fromisoformat(data.strip())
        except ValueError:
            message = self.error_messages["unparsable"].format(value=data[:64])
            raise serializers.ValidationError(message, code="field.datetime") from None

    def to_representation(self, value):
        return value


class CustomEventSerializer(StrictSerializer):
    action = _text("e.g. form.submit, page.visit")
    label = _text()
    client = ClientRefSerializer()
    time = IsoDateTime()
    eventSalt = Scalar(required=False, help_text="A retry with the same eventSalt counts once.")
    params = AnyObject(required=False, allow_null=True)

    class Meta:
        ref_name = "SyneriseCustomEvent"


class NoteSerializer(StrictSerializer):
    text = _text("The note (at most 10,000 characters).")

    class Meta:
        ref_name = "SyneriseNote"


class TagWriteSerializer(StrictSerializer):
    name = _text("At most 20 characters, unique case-insensitively.")
    color = _text("#RRGGBB")
    description = _text()

    class Meta:
        ref_name = "SyneriseTagWrite"


# --- transactions -----------------------------------------------------------------------------------


class MoneySerializer(serializers.Serializer):
    amount = Scalar(help_text="A number")
    currency = Text(help_text="ISO 4217, e.g. PLN")

    class Meta:
        ref_name = "SyneriseMoney"


class ProductSerializer(serializers.Serializer):
    """An order line: any fields (kept as sent); ``finalUnitPrice`` is its price."""

    finalUnitPrice = MoneySerializer(required=False, allow_null=True)

    class Meta:
        ref_name = "SyneriseProduct"

    def to_internal_value(self, data):
        checked = super().to_internal_value(data)  # refuses a non-object, checks finalUnitPrice
        return {**data, **checked}


class TransactionSerializer(StrictSerializer):
    client = ClientRefSerializer()
    orderId = TextOrInteger()
    orderStatus = _text("completed or returned")
    status = _text("The same as orderStatus.")
    value = MoneySerializer()
    revenue = serializers.JSONField(required=False, allow_null=True)
    products = serializers.ListSerializer(child=ProductSerializer(), required=False, allow_null=True)
    recordedAt = IsoDateTime()
    source = serializers.JSONField(required=False, allow_null=True)
    metadata = AnyObject(required=False, allow_null=True)
    paymentInfo = serializers.JSONField(required=False, allow_null=True)
    discountAmount = serializers.JSONField(required=False, allow_null=True)

    class Meta:
        ref_name = "SyneriseTransaction"
