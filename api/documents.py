"""The OpenAPI description of the canonical profile document (``profiles.documents`` renders it)."""

from rest_framework import serializers


class ProfileDocumentSerializer(serializers.Serializer):
    """The profile document (documentation of what ``profile_document`` returns)."""

    previousClients = serializers.ListField(child=serializers.IntegerField())
    clientId = serializers.IntegerField()
    email = serializers.EmailField(allow_null=True)
    phone = serializers.CharField(allow_null=True)
    customId = serializers.CharField(allow_null=True)
    uuid = serializers.UUIDField()
    firstName = serializers.CharField(allow_null=True)
    lastName = serializers.CharField(allow_null=True)
    displayName = serializers.CharField(allow_null=True)
    company = serializers.CharField(allow_null=True)
    address = serializers.CharField(allow_null=True)
    city = serializers.CharField(allow_null=True)
    province = serializers.CharField(allow_null=True)
    zipCode = serializers.CharField(allow_null=True)
    countryCode = serializers.CharField(allow_null=True)
    birthDate = serializers.DateField(allow_null=True)
    lastActivityDate = serializers.DateTimeField(allow_null=True)
    sex = serializers.ChoiceField(choices=["FEMALE", "MALE", "NOT_SPECIFIED", "OTHER"])
    avatarUrl = serializers.URLField(allow_null=True)
    anonymous = serializers.BooleanField()
    agreements = serializers.DictField(child=serializers.BooleanField())
    attributes = serializers.DictField()
    tags = serializers.ListField()

    class Meta:
        ref_name = "SyneriseProfile"
