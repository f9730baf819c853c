"""The webhooks admin (Admin staff only, by model permissions): subscriptions, the message log with each
message's attempts, and resending."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import ActionLocation
from django.core.serializers.json import DjangoJSONEncoder
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.html import format_html, format_html_join

from crm.admin import ServiceAdminMixin, ServiceModelForm
from crm.errors import DomainError
from webhooks.models import EventType, Message, MessageState, Subscription
from webhooks.services import events_payloads, message_resend, subscription_create, subscription_update


class CommaSeparated(forms.CharField):
    def prepare_value(self, value):
        return ", ".join(value) if isinstance(value, list | tuple) else value

    def to_python(self, value):
        return [item.strip() for item in (value or "").split(",") if item.strip()]


class SubscriptionForm(ServiceModelForm):
    events = forms.MultipleChoiceField(choices=EventType.choices, widget=forms.CheckboxSelectMultiple)
    ignore_keys = CommaSeparated(
        required=False,
        label="Ignore API keys",
        help_text="Prefixes of API keys (the part between 'crm_' and the next '_'), comma-separated: changes "
        "made with them are never sent here, so a receiver that writes back cannot start a loop.",
    )
    segment_id = forms.IntegerField(
        required=False, min_value=1, label="Segment", help_text="Only changes of this segment's profiles (its id)."
    )
    error_fields = {"segment": "segment_id", "ignoreKeys": "ignore_keys"}

    class Meta:
        model = Subscription
        fields = ["url", "events", "segment_id", "ignore_keys", "enabled"]

    def error_field(self, name):
        if name and name.startswith("ignoreKeys"):
            name = "ignoreKeys"
        if name and name.startswith("events"):
            name = "events"
        return super().error_field(name)

    def call_service(self):
        data = self.cleaned_data
        arguments = {
            "url": data["url"],
            "events": data["events"],
            "segment": data.get("segment_id"),
            "ignore_keys": data.get("ignore_keys") or [],
            "enabled": data.get("enabled", False),
        }
        if self.instance.pk:
            return subscription_update(subscription_id=self.instance.pk, **arguments)
        subscription, secret = subscription_create(**arguments)
        subscription.plain_secret = secret  # handed to response_add to show once
        return subscription


@admin.register(Subscription)
class SubscriptionAdmin(ServiceAdminMixin, admin.ModelAdmin):
    form = SubscriptionForm
    list_display = ["url", "events_display", "status", "failing_since", "log_link", "created_at"]
    list_filter = ["enabled"]
    search_fields = ["url"]
    readonly_fields = ["status", "failing_since", "log_link", "created_at", "updated_at"]
    secret_template = "admin/webhooks/subscription/secret.html"

    def get_fields(self, request, obj=None):
        editable = ["url", "events", "segment_id", "ignore_keys", "enabled"]
        return editable if obj is None else [*editable, *self.readonly_fields]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    @admin.display(description="events")
    def events_display(self, obj):
        return ", ".join(obj.events)

    @admin.display(description="status")
    def status(self, obj):
        if obj.enabled:
            return "Enabled" if obj.failing_since is None else "Enabled, failing"
        return format_html(
            '<strong class="webhook-disabled">Disabled</strong> {} {}',
            obj.disabled_reason,
            f"({obj.disabled_at:%Y-%m-%d %H:%M})" if obj.disabled_at else "",
        )

    @admin.display(description="messages")
    def log_link(self, obj):
        url = reverse("admin:webhooks_message_changelist") + f"?subscription__id__exact={obj.pk}"
        return format_html('<a href="{}">Message log</a>', url)

    def response_add(self, request, obj, post_url_continue=None):
        # The secret is rendered in the answer to the POST itself and never again.
        context = {
            **self.admin_site.each_context(request),
            "title": "Webhook created",
            "opts": self.opts,
            "subscription": obj,
            "secret": getattr(obj, "plain_secret", ""),
        }
        response = TemplateResponse(request, self.secret_template, context)
        add_never_cache_headers(response)
        return response


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    """The delivery log: every message with its attempts (read-only); resend from the list or the message."""

    list_display = ["created_at", "event_type", "profile_id", "state", "attempt_count", "next_due", "subscription"]
    list_filter = ["state", "event__event_type", "subscription"]
    list_select_related = ["subscription", "event"]
    search_fields = ["=profile_id"]
    ordering = ["-id"]
    show_full_result_count = False
    actions = ["resend"]
    fields = [
        "webhook_id",
        "subscription",
        "event_type",
        "profile_id",
        "actor",
        "state",
        "attempt_count",
        "next_due",
        "created_at",
        "delivered_at",
        "attempts_table",
        "payload",
    ]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # Every field is read-only: the change permission is only there for the resend action.
        extra_context = {
            **(extra_context or {}),
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
        }
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="created", ordering="event__time")
    def created_at(self, obj):
        return obj.event.time

    @admin.display(description="event type", ordering="event__event_type")
    def event_type(self, obj):
        return obj.event.event_type

    @admin.display(description="actor")
    def actor(self, obj):
        return obj.event.actor

    @admin.display(description="webhook-id")
    def webhook_id(self, obj):
        return obj.webhook_id

    @admin.display(description="next attempt")
    def next_due(self, obj):
        return obj.next_attempt_at if obj.state == MessageState.PENDING else "–"

    @admin.display(description="payload")
    def payload(self, obj):
        return format_html(
            "<pre class='webhook-payload'>{}</pre>",
            json.dumps(
                events_payloads(events=[obj.event])[obj.event_id], indent=2, ensure_ascii=False, cls=DjangoJSONEncoder
            ),
        )

    @admin.display(description="attempts")
    def attempts_table(self, obj):
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{} ms</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    f"{a.attempted_at:%Y-%m-%d %H:%M:%S}",
                    a.status_code or "–",
                    a.duration_ms,
                    a.response_excerpt,
                    a.error,
                )
                for a in obj.attempts.order_by("attempted_at", "id")
            ),
        )
        if not rows:
            return "No attempt yet."
        return format_html(
            '<table class="webhook-attempts"><thead><tr><th>time</th><th>status</th><th>duration</th>'
            "<th>response</th><th>error</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    @admin.action(
        description="Resend",
        description_plural="Resend selected messages",
        permissions=["change"],
        location=[ActionLocation.CHANGE_LIST, ActionLocation.CHANGE_FORM],
    )
    def resend(self, request, queryset):
        done, refused = 0, []
        for message_id, subscription_id in queryset.values_list("pk", "subscription_id"):
            try:
                message_resend(subscription_id=subscription_id, message_id=message_id)
                done += 1
            except DomainError as exc:
                refused.append(exc.message)
        if done:
            self.message_user(request, f"{done} message(s) will be sent again (same webhook-id).", messages.SUCCESS)
        for text in dict.fromkeys(refused):
            self.message_user(request, text, messages.ERROR)
