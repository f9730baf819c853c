"""Capillary's upsert body as DRF serializers that validate each customer's shape and document it.

Keys the API does not store are not errors here: the translation answers them with a warning (Capillary's
``warnings[]``). Each customer is validated on its own, so one malformed customer fails alone.
"""

from __future__ import annotations

from rest_framework import serializers

from api.capillary.translation import LOYALTY_TYPES
from api.serializers import AnyObject, StrictBoolean, Text


def _text(**kwargs) -> Text:
    return Text(required=False, allow_null=True, **kwargs)


class IdentifierSerializer(serializers.Serializer):
    type = Text(help_text="email, mobile (with country code), externalId or cardnumber")
    value = Text()

    class Meta:
        ref_name = "CapillaryIdentifier"


class CommChannelSerializer(serializers.Serializer):
    type = Text(help_text="email or mobile are stored; other channels are answered with a warning")
    value = _text()
    primary = StrictBoolean(required=False, allow_null=True)
    verified = StrictBoolean(required=False, allow_null=True)
    meta = AnyObject(required=False, allow_null=True)

    class Meta:
        ref_name = "CapillaryCommChannel"


class ProfileSerializer(serializers.Serializer):
    firstName = _text()
    lastName = _text()
    identifiers = IdentifierSerializer(many=True, allow_empty=False)
    # A null list is "not sent"; a null item in it is an error (the child does not allow null).
    commChannels = serializers.ListSerializer(child=CommChannelSerializer(), required=False, allow_null=True)
    source = _text()
    accountId = _text()
    extendedFields = AnyObject(required=False, allow_null=True)

    class Meta:
        ref_name = "CapillaryProfile"


class LoyaltyInfoSerializer(serializers.Serializer):
    loyaltyType = serializers.ChoiceField(choices=list(LOYALTY_TYPES), required=False, allow_null=True)

    class Meta:
        ref_name = "CapillaryLoyaltyInfo"


class SubscriptionSerializer(serializers.Serializer):
    channel = Text(allow_blank=False, help_text="EMAIL, SMS, ios/android/PUSH, WEB_PUSH or an agreement key")
    type = serializers.ChoiceField(choices=["OPTIN", "OPTOUT"])
    priority = Text(required=False, allow_null=True, help_text="BULK (a consent) or TRANS (ignored)")
    accountId = _text()
    sourceName = _text()

    class Meta:
        ref_name = "CapillarySubscription"


class SubscriptionInfoSerializer(serializers.Serializer):
    subscriptions = SubscriptionSerializer(many=True)

    class Meta:
        ref_name = "CapillarySubscriptionInfo"


class CustomerSerializer(serializers.Serializer):
    profiles = ProfileSerializer(many=True, allow_empty=False)
    extendedFields = AnyObject(
        required=False, allow_null=True, help_text="gender, city, state, zip, dob_date; others: custom attributes"
    )
    loyaltyInfo = LoyaltyInfoSerializer(required=False, allow_null=True)
    statusLabel = _text()
    subscriptionInfo = SubscriptionInfoSerializer(required=False, allow_null=True)

    class Meta:
        ref_name = "CapillaryCustomer"


def error_code(path: str, code: str) -> str:
    """Capillary's own codes for shape errors that have one (a missing identifier list, a subscription state)."""
    if path.endswith(".identifiers") and code in ("field.required", "field.empty", "field.null", "field.type"):
        return "identifier.missing"
    if path.endswith(".type") and ".subscriptions[" in path:
        return "consent.state"
    return code
