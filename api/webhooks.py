"""Webhook subscriptions on the Synerise surface (``admin`` scope): ``/v4/webhooks`` and its messages."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from api.paging import CURSOR_PARAMETERS, cursor_page_response, cursor_params
from api.serializers import StrictBoolean, StrictInteger, StrictSerializer, Text
from api.v4 import API_VERSION, ERRORS, PlatformView, validated
from crm.models import Scope
from webhooks.models import EventType, Message, Subscription
from webhooks.selectors import subscription_messages
from webhooks.services import (
    events_payloads,
    message_resend,
    subscription_create,
    subscription_delete,
    subscription_get,
    subscription_update,
)

TAGS = ["Webhooks"]


def _iso(value) -> str | None:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z") if value else None


class SubscriptionWriteSerializer(StrictSerializer):
    """A subscription: where to send, which event types, and what to leave out."""

    url = Text(help_text="An http(s) URL on a public address (private ones only with WEBHOOKS_ALLOW_PRIVATE_TARGETS).")
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=EventType.values), min_length=1, max_length=len(EventType.values)
    )
    segment = StrictInteger(
        required=False, allow_null=True, min_value=1, help_text="Only changes of this segment's profiles."
    )
    ignoreKeys = serializers.ListField(
        child=Text(max_length=16),
        required=False,
        max_length=100,
        help_text="API key prefixes (between 'crm_' and the next '_') whose changes are never sent here.",
    )
    enabled = StrictBoolean(required=False, default=True)

    class Meta:
        ref_name = "WebhookWrite"


SUBSCRIPTION_FIELDS = {
    "id": serializers.IntegerField(),
    "url": serializers.CharField(),
    "events": serializers.ListField(child=serializers.CharField()),
    "segment": serializers.IntegerField(allow_null=True),
    "ignoreKeys": serializers.ListField(child=serializers.CharField()),
    "enabled": serializers.BooleanField(),
    "disabledReason": serializers.CharField(allow_blank=True),
    "disabledAt": serializers.DateTimeField(allow_null=True),
    "failingSince": serializers.DateTimeField(allow_null=True),
    "createdAt": serializers.DateTimeField(),
    "updatedAt": serializers.DateTimeField(),
}
SubscriptionJson = inline_serializer("Webhook", SUBSCRIPTION_FIELDS)
CreatedJson = inline_serializer(
    "WebhookCreated",
    {**SUBSCRIPTION_FIELDS, "secret": serializers.CharField(help_text="whsec_…: shown this once")},
)
AttemptJson = inline_serializer(
    "WebhookAttempt",
    {
        "time": serializers.DateTimeField(),
        "statusCode": serializers.IntegerField(allow_null=True),
        "durationMs": serializers.IntegerField(),
        "responseExcerpt": serializers.CharField(allow_blank=True),
        "error": serializers.CharField(allow_blank=True),
    },
    many=True,
)
MESSAGE_FIELDS = {
    "id": serializers.IntegerField(),
    "webhookId": serializers.CharField(),
    "type": serializers.CharField(),
    "clientId": serializers.IntegerField(allow_null=True),
    "actor": serializers.CharField(allow_blank=True),
    "state": serializers.ChoiceField(choices=["pending", "delivered", "failed"]),
    "attemptCount": serializers.IntegerField(),
    "nextAttemptAt": serializers.DateTimeField(allow_null=True),
    "createdAt": serializers.DateTimeField(),
    "deliveredAt": serializers.DateTimeField(allow_null=True),
    "payload": serializers.DictField(),
    "attempts": AttemptJson,
}
MessageJson = inline_serializer("WebhookMessage", MESSAGE_FIELDS)
MessagePageJson = inline_serializer(
    "WebhookMessagePage",
    {
        "data": inline_serializer("WebhookMessage", MESSAGE_FIELDS, many=True),
        "nextCursor": serializers.CharField(allow_null=True),
    },
)


def subscription_document(subscription: Subscription) -> dict:
    return {
        "id": subscription.pk,
        "url": subscription.url,
        "events": list(subscription.events),
        "segment": subscription.segment_id,
        "ignoreKeys": list(subscription.ignore_keys),
        "enabled": subscription.enabled,
        "disabledReason": subscription.disabled_reason,
        "disabledAt": _iso(subscription.disabled_at),
        "failingSince": _iso(subscription.failing_since),
        "createdAt": _iso(subscription.created_at),
        "updatedAt": _iso(subscription.updated_at),
    }


def message_document(message: Message, payload: dict) -> dict:
    return {
        "id": message.pk,
        "webhookId": message.webhook_id,
        "type": message.event.event_type,
        "clientId": message.profile_id,
        "actor": message.event.actor,
        "state": message.state,
        "attemptCount": message.attempt_count,
        "nextAttemptAt": _iso(message.next_attempt_at) if message.state == "pending" else None,
        "createdAt": _iso(message.event.time),
        "deliveredAt": _iso(message.delivered_at),
        "payload": payload,
        "attempts": [
            {
                "time": _iso(a.attempted_at),
                "statusCode": a.status_code,
                "durationMs": a.duration_ms,
                "responseExcerpt": a.response_excerpt,
                "error": a.error,
            }
            for a in message.attempts.all()
        ],
    }


def _arguments(body: dict) -> dict:
    return {
        "url": body["url"],
        "events": body["events"],
        "segment": body.get("segment"),
        "ignore_keys": body.get("ignoreKeys") or [],
        "enabled": body.get("enabled", True),
    }


class WebhookView(PlatformView):
    required_scope = Scope.ADMIN


class WebhookListCreateView(WebhookView):
    @extend_schema(
        operation_id="webhooks_list",
        tags=TAGS,
        summary="List the webhook subscriptions",
        parameters=[API_VERSION],
        responses={200: inline_serializer("Webhook", SUBSCRIPTION_FIELDS, many=True), **ERRORS},
    )
    def get(self, request):
        return Response([subscription_document(s) for s in Subscription.objects.order_by("pk")])

    @extend_schema(
        operation_id="webhooks_create",
        tags=TAGS,
        summary="Create a webhook subscription (the answer shows its signing secret, this once)",
        parameters=[API_VERSION],
        request=SubscriptionWriteSerializer,
        responses={201: CreatedJson, **ERRORS},
    )
    def post(self, request):
        body = validated(SubscriptionWriteSerializer, request.data)
        subscription, secret = subscription_create(**_arguments(body))
        return Response({**subscription_document(subscription), "secret": secret}, status=201)


class WebhookDetailView(WebhookView):
    @extend_schema(
        operation_id="webhooks_get",
        tags=TAGS,
        summary="A webhook subscription",
        parameters=[API_VERSION],
        responses={200: SubscriptionJson, **ERRORS},
    )
    def get(self, request, webhook_id: int):
        return Response(subscription_document(subscription_get(subscription_id=webhook_id)))

    @extend_schema(
        operation_id="webhooks_update",
        tags=TAGS,
        summary="Replace a webhook subscription's settings (enabling a disabled one clears why it was)",
        parameters=[API_VERSION],
        request=SubscriptionWriteSerializer,
        responses={200: SubscriptionJson, **ERRORS},
    )
    def put(self, request, webhook_id: int):
        body = validated(SubscriptionWriteSerializer, request.data)
        subscription = subscription_update(subscription_id=webhook_id, **_arguments(body))
        return Response(subscription_document(subscription))

    @extend_schema(
        operation_id="webhooks_delete",
        tags=TAGS,
        summary="Delete a webhook subscription with its message log",
        parameters=[API_VERSION],
        responses={204: None, **ERRORS},
    )
    def delete(self, request, webhook_id: int):
        subscription_delete(subscription_id=webhook_id)
        return Response(status=204)


class WebhookMessagesView(WebhookView):
    @extend_schema(
        operation_id="webhooks_messages",
        tags=TAGS,
        summary="A subscription's messages, newest first, each with its attempts (cursor-paged)",
        parameters=[
            API_VERSION,
            *CURSOR_PARAMETERS,
        ],
        responses={200: MessagePageJson, **ERRORS},
    )
    def get(self, request, webhook_id: int):
        subscription = subscription_get(subscription_id=webhook_id)
        params = request.query_params
        page = subscription_messages(
            subscription_id=subscription.pk,
            **cursor_params(params),
        )
        payloads = events_payloads(events={m.event for m in page.messages})
        return cursor_page_response(
            data=[message_document(m, payloads[m.event_id]) for m in page.messages], next_cursor=page.next_cursor
        )


class WebhookResendView(WebhookView):
    @extend_schema(
        operation_id="webhooks_message_resend",
        tags=TAGS,
        summary="Send a message again: one more attempt, same webhook-id and body",
        parameters=[API_VERSION],
        request=None,
        responses={202: MessageJson, **ERRORS},
    )
    def post(self, request, webhook_id: int, message_id: int):
        message = message_resend(subscription_id=webhook_id, message_id=message_id)
        message = Message.objects.select_related("event").prefetch_related("attempts").get(pk=message.pk)
        return Response(
            message_document(message, events_payloads(events=[message.event])[message.event_id]), status=202
        )


urlpatterns = [
    path("v4/webhooks", WebhookListCreateView.as_view(), name="webhooks"),
    path("v4/webhooks/<int:webhook_id>", WebhookDetailView.as_view(), name="webhook"),
    path("v4/webhooks/<int:webhook_id>/messages", WebhookMessagesView.as_view(), name="webhook-messages"),
    path(
        "v4/webhooks/<int:webhook_id>/messages/<int:message_id>/resend",
        WebhookResendView.as_view(),
        name="webhook-message-resend",
    ),
]
