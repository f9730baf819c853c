"""The platform API's conventions, shared by every endpoint under ``/v4`` (the profile surface and the feature
endpoints alike): the error shape and its OpenAPI description, the ``Api-Version`` header, the base view, and
validation of a body by a serializer. Paging lives in ``api.paging``."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import serializers

from api.base import ApiView
from api.errors import render_error
from crm.actors import actor_of

ErrorJson = inline_serializer(
    "SyneriseError",
    {
        "status": serializers.IntegerField(),
        "error": serializers.CharField(),
        "message": serializers.CharField(),
        "path": serializers.CharField(),
        "timestamp": serializers.DateTimeField(),
        "code": serializers.CharField(),
        "field": serializers.CharField(required=False),
    },
)


ERRORS = {code: OpenApiResponse(ErrorJson) for code in (400, 401, 403, 404, 409, 411, 413, 429, 503)}


# An erased profile's clientId, merged-in ids and uuids answer 410 Gone (code profile.erased) for good.
ERRORS[410] = OpenApiResponse(
    ErrorJson, description="Gone (code `profile.erased`): the clientId or uuid named a profile that was erased."
)


API_VERSION = OpenApiParameter(
    "Api-Version", OpenApiTypes.STR, OpenApiParameter.HEADER, description="Accepted, e.g. 4.4"
)


class PlatformView(ApiView):
    error_renderer = staticmethod(render_error)

    @property
    def actor(self) -> str:
        return actor_of(self.request)


def validated(serializer_class, body) -> dict:
    """``body`` validated by ``serializer_class`` (DRF's ValidationError names the field otherwise)."""
    serializer = serializer_class(data=body)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
