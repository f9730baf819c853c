"""Segments in the Synerise-style API: ``/v4/segments…``, and the segments of one profile.

The surface translates shapes; ``segments.services`` decides. Reads, counts and previews need the ``read`` scope,
changes ``write``; errors come in Synerise's shape.
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from api.documents import ProfileDocumentSerializer
from api.paging import PAGE_PARAMETERS, page_window, profile_list_response
from api.v4 import API_VERSION, ERRORS, PlatformView
from crm.errors import NotFound, ValidationFailed
from crm.models import Scope
from profiles.conditions import MAX_ID
from profiles.documents import profile_documents_by_ids
from profiles.services import profile_lookup
from segments.models import Segment
from segments.services import (
    profile_segments,
    segment_count,
    segment_create,
    segment_delete,
    segment_queryset,
    segment_update,
    tree_preview,
)

TREE_HELP = (
    'A condition tree: {"all": [...]}, {"any": [...]}, {"not": C}, {"field", "op", "value"}, '
    '{"attribute", "op", "value"}, {"tag"} or {"tagId"}, {"agreement", "state"}, {"event", "op", "count", '
    '"withinDays"}, {"commerce", "op", "value"}, {"segment": id}.'
)


class SegmentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    filter = serializers.JSONField(help_text=TREE_HELP)
    timeRelative = serializers.BooleanField()
    createdAt = serializers.DateTimeField()
    updatedAt = serializers.DateTimeField()
    createdBy = serializers.CharField()
    updatedBy = serializers.CharField()
    lastCount = serializers.IntegerField(allow_null=True)
    lastEvaluatedAt = serializers.DateTimeField(allow_null=True)
    evaluationMs = serializers.FloatField(allow_null=True)


class SegmentWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=128)
    description = serializers.CharField(required=False, allow_blank=True)
    filter = serializers.JSONField(help_text=TREE_HELP)


class PreviewRequestSerializer(serializers.Serializer):
    filter = serializers.JSONField(help_text=TREE_HELP)


CountJson = inline_serializer("SegmentCount", {"count": serializers.IntegerField(), "tookMs": serializers.FloatField()})
PreviewJson = inline_serializer(
    "SegmentPreview",
    {
        "count": serializers.IntegerField(),
        "tookMs": serializers.FloatField(),
        "clients": ProfileDocumentSerializer(many=True),
    },
)
MembershipJson = inline_serializer(
    "ClientSegment",
    {"id": serializers.IntegerField(), "name": serializers.CharField(), "since": serializers.DateTimeField()},
    many=True,
)


def _iso(value):
    return value.isoformat().replace("+00:00", "Z") if value else None


def segment_document(segment: Segment) -> dict:
    return {
        "id": segment.pk,
        "name": segment.name,
        "description": segment.description,
        "filter": segment.tree,
        "timeRelative": segment.time_relative,
        "createdAt": _iso(segment.created_at),
        "updatedAt": _iso(segment.updated_at),
        "createdBy": segment.created_by,
        "updatedBy": segment.updated_by,
        "lastCount": segment.last_count,
        "lastEvaluatedAt": _iso(segment.last_evaluated_at),
        "evaluationMs": None if segment.evaluation_ms is None else round(segment.evaluation_ms, 2),
    }


def _body(request) -> dict:
    if not isinstance(request.data, dict):
        raise ValidationFailed("The body is a JSON object.", field="body")
    return request.data


def _text(data: dict, name: str, *, required: bool) -> str | None:
    value = data.get(name)
    if value is None:
        if required:
            raise ValidationFailed(f"{name} is required.", field=name)
        return None
    if not isinstance(value, str):
        raise ValidationFailed(f"{name} must be a string.", field=name)
    return value


def _filter(data: dict, *, required: bool):
    if "filter" not in data:
        if required:
            raise ValidationFailed("filter is required.", field="filter")
        return None
    return data["filter"]


def segment_get(segment_id: int) -> Segment:
    segment = Segment.objects.filter(pk=segment_id).first() if 0 < segment_id <= MAX_ID else None
    if segment is None:
        raise NotFound(f"Segment {segment_id} not found.", field="segmentId", code="segment.not_found")
    return segment


class SegmentListCreateView(PlatformView):
    @extend_schema(
        operation_id="segments_list",
        tags=["Segments"],
        summary="List segments",
        parameters=[API_VERSION, *PAGE_PARAMETERS],
        responses={200: SegmentSerializer(many=True), **ERRORS},
    )
    def get(self, request):
        params = request.query_params
        index, size = page_window(params, max_index=1_000_000)
        segments = Segment.objects.order_by("name", "id")
        page = list(segments[index * size : (index + 1) * size])
        response = Response([segment_document(s) for s in page])
        response["X-Total-Count"] = str(segments.count())
        return response

    @extend_schema(
        operation_id="segments_create",
        tags=["Segments"],
        summary="Create a segment (it fills in the background within seconds)",
        parameters=[API_VERSION],
        request=SegmentWriteSerializer,
        responses={201: SegmentSerializer, **ERRORS},
    )
    def post(self, request):
        data = _body(request)
        segment = segment_create(
            name=_text(data, "name", required=True),
            description=_text(data, "description", required=False) or "",
            tree=_filter(data, required=True),
            actor=self.actor,
        )
        return Response(segment_document(segment), status=201)


class SegmentDetailView(PlatformView):
    @extend_schema(
        operation_id="segments_get",
        tags=["Segments"],
        summary="Get a segment",
        parameters=[API_VERSION],
        responses={200: SegmentSerializer, **ERRORS},
    )
    def get(self, request, segment_id: int):
        return Response(segment_document(segment_get(segment_id)))

    @extend_schema(
        operation_id="segments_update",
        tags=["Segments"],
        summary="Replace a segment's name, description and tree",
        parameters=[API_VERSION],
        request=SegmentWriteSerializer,
        responses={200: SegmentSerializer, **ERRORS},
    )
    def put(self, request, segment_id: int):
        data = _body(request)
        segment = segment_update(
            segment=segment_get(segment_id),
            name=_text(data, "name", required=True),
            description=_text(data, "description", required=False) or "",
            tree=_filter(data, required=True),
            actor=self.actor,
        )
        return Response(segment_document(segment))

    @extend_schema(
        operation_id="segments_delete",
        tags=["Segments"],
        summary="Delete a segment (409 naming its users while anything uses it)",
        parameters=[API_VERSION],
        responses={204: OpenApiResponse(description="Deleted"), **ERRORS},
    )
    def delete(self, request, segment_id: int):
        segment_delete(segment=segment_get(segment_id), actor=self.actor)
        return Response(status=204)


class SegmentCountView(PlatformView):
    @extend_schema(
        operation_id="segments_count",
        tags=["Segments"],
        summary="Count a segment's profiles by evaluating its tree (exact at once)",
        parameters=[API_VERSION],
        responses={200: CountJson, **ERRORS},
    )
    def get(self, request, segment_id: int):
        result = segment_count(segment=segment_get(segment_id))
        return Response({"count": result.count, "tookMs": result.took_ms})


class SegmentClientsView(PlatformView):
    @extend_schema(
        operation_id="segments_clients",
        tags=["Segments"],
        summary="A segment's profiles, paged as GET /v4/clients",
        parameters=[API_VERSION, *PAGE_PARAMETERS, OpenApiParameter("sortBy", str, description="as GET /v4/clients")],
        responses={200: ProfileDocumentSerializer(many=True), **ERRORS},
    )
    def get(self, request, segment_id: int):
        return profile_list_response(segment_queryset(segment=segment_get(segment_id)), request.query_params)


class SegmentPreviewView(PlatformView):
    required_scope = Scope.READ

    @extend_schema(
        operation_id="segments_preview",
        tags=["Segments"],
        summary="A tree without saving it: its count and the first 20 profiles",
        parameters=[API_VERSION],
        request=PreviewRequestSerializer,
        responses={200: PreviewJson, **ERRORS},
    )
    def post(self, request):
        preview = tree_preview(tree=_filter(_body(request), required=True))
        return Response(
            {
                "count": preview.count,
                "tookMs": preview.took_ms,
                "clients": profile_documents_by_ids(preview.profile_ids),
            }
        )


class ClientSegmentsView(PlatformView):
    @extend_schema(
        operation_id="clients_segments",
        tags=["Segments"],
        summary="The segments a profile is in (live membership)",
        parameters=[API_VERSION],
        responses={200: MembershipJson, **ERRORS},
    )
    def get(self, request, client_id: int):
        profile = profile_lookup(kind="clientId", value=client_id)
        return Response(
            [
                {"id": s.pk, "name": s.name, "since": _iso(s.member_since)}
                for s in profile_segments(profile_id=profile.pk)
            ]
        )


urlpatterns = [
    path("v4/segments", SegmentListCreateView.as_view(), name="segments"),
    path("v4/segments/preview", SegmentPreviewView.as_view(), name="segments-preview"),
    path("v4/segments/<int:segment_id>", SegmentDetailView.as_view(), name="segment"),
    path("v4/segments/<int:segment_id>/count", SegmentCountView.as_view(), name="segment-count"),
    path("v4/segments/<int:segment_id>/clients", SegmentClientsView.as_view(), name="segment-clients"),
    path("v4/clients/<int:client_id>/segments", ClientSegmentsView.as_view(), name="client-segments"),
]
