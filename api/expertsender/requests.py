"""ExpertSender's ``POST /customers`` body as DRF serializers that validate its shape and document it.

Each ``data[]`` item is validated on its own (``PerItemList``): its errors, all of them, become that item's
entry in the 400's ``errors``. ``null`` and ``""`` mean "not sent"; the fields of the GET document are
accepted and ignored (a client may send back what it read).
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.expertsender.translation import (
    CONSENT_VALUES,
    GENDERS,
    MATCH_BY,
    MAX_LENGTHS,
    MODES,
    READ_ONLY,
)
from api.serializers import (
    CaseInsensitiveChoice,
    PerItemList,
    Scalar,
    StrictBoolean,
    StrictInteger,
    StrictSerializer,
    Text,
)

MODE_NAMES = {"Add": MODES["add"], "Update": MODES["update"], "AddOrUpdate": MODES["addorupdate"]}
MATCH_BY_NAMES = {name: MATCH_BY[name.lower()] for name in ("Email", "PhoneNumber", "CrmId", "GUID", "VisitorId")}
GENDER_CHOICES = {"Male": GENDERS["male"], "Female": GENDERS["female"], "NotSpecified": GENDERS["notspecified"]}
CONSENT_STATE_NAMES = {name: CONSENT_VALUES[name.lower()] for name in ("True", "False", "AwaitingConfirmation")}
ATTRIBUTE_NAME_MAX = 256


@extend_schema_field(OpenApiTypes.DATETIME)
class DateTimeAsDate(serializers.Field):
    """An ISO 8601 date-time (without an offset it is UTC), kept as its UTC date."""

    default_error_messages = {"invalid": "must be a date-time such as 2023-07-25T12:35:54.712Z."}

    def to_internal_value(self, data):
        try:
            parsed = datetime.fromisoformat(data.strip()) if isinstance(data, str) else None
        except ValueError:
            parsed = None
        if parsed is None:
            self.fail("invalid")
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC).date()

    def to_representation(self, value):
        return value


class CustomAttributeSerializer(StrictSerializer):
    name = Text(allow_blank=False, max_length=ATTRIBUTE_NAME_MAX)
    value = Scalar(required=False, help_text="Sent as text; taken in the type of the attribute's definition.")

    class Meta:
        ref_name = "ExpertSenderCustomAttribute"


class ConsentSerializer(StrictSerializer):
    id = StrictInteger(help_text="The agreement's id (see the admin's agreements page).")
    value = CaseInsensitiveChoice(CONSENT_STATE_NAMES)

    class Meta:
        ref_name = "ExpertSenderConsent"


class ConsentsDataSerializer(StrictSerializer):
    consents = serializers.ListSerializer(child=ConsentSerializer(), required=False, allow_null=True)
    force = StrictBoolean(required=False, allow_null=True, help_text="Send the double opt-in e-mail again.")
    confirmationMessageId = StrictInteger(required=False, allow_null=True, help_text="Accepted, not used.")

    class Meta:
        ref_name = "ExpertSenderConsentsData"


def _text(name: str, help_text: str = "") -> Text:
    return Text(required=False, max_length=MAX_LENGTHS[name], help_text=help_text)


class CustomerWriteSerializer(StrictSerializer):
    ignored_keys = frozenset(READ_ONLY)

    email = _text("email")
    phone = _text("phone")
    crmId = _text("crmId", "Our customId (a number is taken as its text).")
    visitorId = _text("visitorId", "A uuid of the visitor.")
    firstName = _text("firstName")
    lastName = _text("lastName")
    dateOfBirth = DateTimeAsDate(required=False, help_text="Stored as a date (UTC).")
    gender = CaseInsensitiveChoice(GENDER_CHOICES, required=False)
    customAttributes = CustomAttributeSerializer(many=True, required=False)
    consentsData = ConsentsDataSerializer(required=False)

    class Meta:
        ref_name = "ExpertSenderCustomerWrite"

    def to_internal_value(self, data):
        if isinstance(data, dict):
            data = {
                key: (str(value) if key == "crmId" and type(value) is int else value)
                for key, value in data.items()
                # null and "" mean "not sent": nothing is cleared through this API
                if value is not None and not (value == "" and key in MAX_LENGTHS)
            }
        return super().to_internal_value(data)


class CustomersRequestSerializer(serializers.Serializer):
    mode = CaseInsensitiveChoice(MODE_NAMES)
    matchBy = CaseInsensitiveChoice(
        MATCH_BY_NAMES, help_text="The field every item must carry (GUID and VisitorId both mean visitorId)."
    )
    data = PerItemList(child=CustomerWriteSerializer(), allow_empty=False, max_items=lambda: settings.BATCH_MAX_ITEMS)

    class Meta:
        ref_name = "ExpertSenderCustomersRequest"
