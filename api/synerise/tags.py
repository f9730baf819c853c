"""Tags on the Synerise surface: ``/v4/clients/tags`` and ``/v4/clients/{clientId}/tags/{tagId}``."""

from django.db.models.functions import Lower
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from api.synerise.requests import TagWriteSerializer
from api.synerise.views import SOURCE
from api.v4 import API_VERSION, ERRORS, PlatformView, validated
from profiles.models import Tag
from profiles.services import profile_lookup
from profiles.services.tags import tag_create, tag_delete, tag_get, tags_add, tags_remove

TAG_FIELDS = {
    "id": serializers.IntegerField(),
    "name": serializers.CharField(max_length=20),
    "color": serializers.CharField(allow_blank=True),
    "description": serializers.CharField(allow_blank=True),
    "createdAt": serializers.DateTimeField(),
}
TagJson = inline_serializer("SyneriseTag", TAG_FIELDS)
TagListJson = inline_serializer("SyneriseTag", TAG_FIELDS, many=True)
ACCEPTED = OpenApiResponse(description="Accepted, no content")


def tag_document(tag: Tag) -> dict:
    return {
        "id": tag.pk,
        "name": tag.name,
        "color": tag.color,
        "description": tag.description,
        "createdAt": tag.created_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
    }


class TagListCreateView(PlatformView):
    @extend_schema(
        operation_id="tags_list",
        tags=["Tags"],
        summary="List the tags",
        parameters=[API_VERSION],
        responses={200: TagListJson},
    )
    def get(self, request):
        return Response([tag_document(tag) for tag in Tag.objects.order_by(Lower("name"), "pk")])

    @extend_schema(
        operation_id="tags_create",
        tags=["Tags"],
        summary="Create a tag (name at most 20 characters, unique case-insensitively)",
        parameters=[API_VERSION],
        request=TagWriteSerializer,
        responses={201: TagJson, **ERRORS},
    )
    def post(self, request):
        body = validated(TagWriteSerializer, request.data)
        tag = tag_create(
            name=body.get("name"),
            color=body.get("color") or "",
            description=body.get("description") or "",
            actor=self.actor,
        )
        return Response(tag_document(tag), status=201)


class TagDetailView(PlatformView):
    @extend_schema(operation_id="tags_get", tags=["Tags"], parameters=[API_VERSION], responses={200: TagJson, **ERRORS})
    def get(self, request, tag_id: int):
        return Response(tag_document(tag_get(tag_id=tag_id)))

    @extend_schema(
        operation_id="tags_delete",
        tags=["Tags"],
        summary="Delete a tag (it is removed from every profile first)",
        parameters=[API_VERSION],
        responses={202: ACCEPTED, **ERRORS},
    )
    def delete(self, request, tag_id: int):
        tag_delete(tag=tag_get(tag_id=tag_id), source=SOURCE, actor=self.actor)
        return Response(status=202)


class ClientTagView(PlatformView):
    @extend_schema(
        operation_id="clients_tag_add",
        tags=["Tags"],
        summary="Tag a profile (tagging twice changes nothing)",
        parameters=[API_VERSION],
        request=None,
        responses={202: ACCEPTED, **ERRORS},
    )
    def post(self, request, client_id: int, tag_id: int):
        profile = profile_lookup(kind="clientId", value=client_id)
        tags_add(profiles=[profile], tags=[tag_get(tag_id=tag_id)], source=SOURCE, actor=self.actor)
        return Response(status=202)

    @extend_schema(
        operation_id="clients_tag_remove",
        tags=["Tags"],
        summary="Remove a tag from a profile",
        parameters=[API_VERSION],
        responses={202: ACCEPTED, **ERRORS},
    )
    def delete(self, request, client_id: int, tag_id: int):
        profile = profile_lookup(kind="clientId", value=client_id)
        tags_remove(profiles=[profile], tags=[tag_get(tag_id=tag_id)], source=SOURCE, actor=self.actor)
        return Response(status=202)
