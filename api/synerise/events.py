"""Events on the Synerise surface: ``POST /v4/events/custom``, a profile's timeline, notes and aggregates."""

from __future__ import annotations

from datetime import datetime

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from api.paging import CURSOR_PARAMETERS, cursor_page_response, cursor_params
from api.synerise.requests import CustomEventSerializer, NoteSerializer
from api.synerise.views import SOURCE
from api.v4 import API_VERSION, ERRORS, PlatformView, validated
from crm.errors import ValidationFailed
from crm.replica import replica_reads
from profiles.models import Event
from profiles.selectors import profile_aggregates, profile_timeline
from profiles.services import profile_lookup
from profiles.services.events import EventInput, event_record, note_add


def event_document(event: Event) -> dict:
    return {
        "eventId": event.pk,
        "clientId": event.profile_id,
        "action": event.action,
        "label": event.label,
        "time": event.time.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "params": event.params,
        "source": event.source,
        "system": event.is_system,
    }


EventJson = inline_serializer(
    "SyneriseEvent",
    {
        "eventId": serializers.IntegerField(),
        "clientId": serializers.IntegerField(),
        "action": serializers.CharField(),
        "label": serializers.CharField(),
        "time": serializers.DateTimeField(),
        "params": serializers.DictField(),
        "source": serializers.CharField(),
        "system": serializers.BooleanField(),
    },
)


class CustomEventView(PlatformView):
    @extend_schema(
        operation_id="events_custom",
        tags=["Events"],
        summary="Record a custom event; an unknown uuid creates an anonymous profile, eventSalt deduplicates",
        parameters=[API_VERSION],
        request=CustomEventSerializer,
        responses={202: OpenApiResponse(description="Accepted, no content (a repeated eventSalt too)"), **ERRORS},
    )
    def post(self, request):
        body = validated(CustomEventSerializer, request.data)
        params = body.get("params")
        data = EventInput(
            action=body.get("action"),
            client=body["client"],
            label=body.get("label") if body.get("label") is not None else "",
            time=body.get("time"),
            salt=body.get("eventSalt"),
            params={} if params is None else dict(params),
        )
        event_record(data=data, source=SOURCE, actor=self.actor)
        return Response(status=202)


class ClientEventsView(PlatformView):
    @extend_schema(
        operation_id="clients_events",
        tags=["Events"],
        summary="A profile's timeline, newest first, cursor-paged",
        parameters=[
            API_VERSION,
            OpenApiParameter(
                "action", str, many=True, description="only these actions (repeatable or comma-separated)"
            ),
            OpenApiParameter("type", str, enum=["system", "custom"], description="only system or only custom events"),
            *CURSOR_PARAMETERS,
        ],
        responses={
            200: inline_serializer(
                "SyneriseEventPage",
                {"data": EventJson.__class__(many=True), "nextCursor": serializers.CharField(allow_null=True)},
            ),
            **ERRORS,
        },
    )
    @replica_reads()
    def get(self, request, client_id: int):
        profile = profile_lookup(kind="clientId", value=client_id)
        params = request.query_params
        actions = [a.strip() for raw in params.getlist("action") for a in raw.split(",") if a.strip()]
        kind = params.get("type")
        if kind not in (None, "", "system", "custom"):
            raise ValidationFailed("type must be 'system' or 'custom'.", field="type")
        page = profile_timeline(
            profile_id=profile.pk,
            actions=actions or None,
            system=None if not kind else kind == "system",
            **cursor_params(params),
        )
        return cursor_page_response(data=[event_document(e) for e in page.events], next_cursor=page.next_cursor)


class ClientNotesView(PlatformView):
    @extend_schema(
        operation_id="clients_note_add",
        tags=["Events"],
        summary="Add a note to a profile (a system event on its timeline)",
        parameters=[API_VERSION],
        request=NoteSerializer,
        responses={201: EventJson, **ERRORS},
    )
    def post(self, request, client_id: int):
        profile = profile_lookup(kind="clientId", value=client_id)
        body = validated(NoteSerializer, request.data)
        event = note_add(profile=profile, text=body.get("text"), author=self.actor, source=SOURCE)
        return Response(event_document(event), status=201)


class ClientAggregatesView(PlatformView):
    @extend_schema(
        operation_id="clients_aggregates",
        tags=["Events"],
        summary="Event counts by action over 7/30/90 days, last event time, commerce figures and RFM",
        parameters=[API_VERSION],
        responses={200: OpenApiTypes.OBJECT, **ERRORS},
    )
    @replica_reads()
    def get(self, request, client_id: int):
        profile = profile_lookup(kind="clientId", value=client_id)
        data = profile_aggregates(profile_id=profile.pk)
        commerce = data["commerce"]
        return Response(
            {
                "clientId": profile.pk,
                "events": data["counts"],
                "lastEventTime": _iso(data["lastEventTime"]),
                **{k: v for k, v in commerce.items() if k != "lastOrder"},
                "lastOrder": _iso(commerce["lastOrder"]),
            }
        )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds").replace("+00:00", "Z") if value else None
