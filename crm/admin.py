"""Admin plumbing shared by every app (forms that write through a service), the API keys and batch jobs pages, and
the System page (Admin staff: workers, queues, webhook backlog, failures, replica lag and disk, with 24-hour
charts)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import ActionLocation
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.html import format_html, format_html_join

from crm.actors import actor_of
from crm.charts import sparkline, value_text
from crm.errors import DomainError
from crm.health import replica_status
from crm.metrics import series_key
from crm.models import ApiKey, Job, Scope, SystemSample
from crm.services import api_key_create, api_keys_deactivate
from crm.system import disk_rows, failed_recently, queue_rows, series_history, worker_heartbeats
from segments.metrics import refresh_backlog
from webhooks.selectors import fan_out_backlog, subscriptions_backlog


class ServiceModelForm(forms.ModelForm):
    """A ModelForm whose model validation *is* the service call.

    The admin turns only validation errors into a re-rendered form, so the service (which checks
    every rule and writes in one step) runs where the model's ``full_clean`` would, inside the
    transaction the admin opens for each POST. A ``DomainError`` becomes an error on the field it
    names, or on the form; on success ``self.instance`` is the written object and
    ``ServiceAdminMixin.save_model`` has nothing left to do.
    """

    request = None  # set per request by ServiceAdminMixin.get_form
    # The service's field names (as its errors name them) that differ from the form's.
    error_fields: dict[str, str] = {}

    def call_service(self):
        """Validate and write through the service; return the written object."""
        raise NotImplementedError

    @property
    def actor(self) -> str:
        return actor_of(getattr(self.request, "user", None))

    def error_field(self, name: str | None) -> str | None:
        name = self.error_fields.get(name, name) if name else None
        return name if name in self.fields else None

    def domain_error(self, exc: DomainError) -> None:
        """Show a service's error on the form: on the field it names, else on the form as a whole."""
        self.add_error(self.error_field(exc.field), exc.message)

    def _post_clean(self):
        if self.errors:
            return
        try:
            with transaction.atomic():
                self.instance = self.call_service()
        except DomainError as exc:
            self.domain_error(exc)


class ServiceAdminMixin:
    """ModelAdmin side of ServiceModelForm: an optional add form, the request handed to the form."""

    add_form: type[forms.ModelForm] | None = None

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None and self.add_form is not None:
            kwargs.setdefault("form", self.add_form)
        form = super().get_form(request, obj, change, **kwargs)
        form.request = request
        return form

    def save_model(self, request, obj, form, change):
        if isinstance(form, ServiceModelForm):
            return  # the service wrote it while validating the form
        super().save_model(request, obj, form, change)


class InUseAdminMixin:
    """ModelAdmin side of a ``crm.usage`` registry: an object something uses is not deleted. Its delete page sends
    back to the change page with the users named; "delete selected" lists them as protected and deletes nothing.
    ``in_use_label`` words the protected lines ("uses segment 'VIP'")."""

    in_use: Callable[[int], list[str]]  # the registry's ``users``, as a staticmethod
    in_use_label: str

    def delete_view(self, request, object_id, extra_context=None):
        users = self.in_use(int(object_id)) if str(object_id).isdigit() else []
        if users:
            opts = self.model._meta
            self.message_user(request, f"This {opts.verbose_name} is in use by {', '.join(users)}.", messages.ERROR)
            return HttpResponseRedirect(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[object_id]))
        return super().delete_view(request, object_id, extra_context)

    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        in_use = [f"{user} ({self.in_use_label} '{obj.name}')" for obj in objs for user in self.in_use(obj.pk)]
        return deleted, counts, perms_needed, list(protected) + in_use


class ApiKeyAddForm(ServiceModelForm):
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text="read: look profiles up; write: create, update and delete; export: whole lists as files "
        "(/v4/clients/export.csv|.jsonl); admin: everything.",
    )

    error_fields = {"rate_limit": "rate_limit"}

    class Meta:
        model = ApiKey
        fields = ["name", "scopes", "rate_limit"]

    def call_service(self):
        created_by = self.request.user if self.request is not None and self.request.user.is_authenticated else None
        key, secret = api_key_create(
            name=self.cleaned_data["name"],
            scopes=self.cleaned_data["scopes"],
            created_by=created_by,
            rate_limit=self.cleaned_data.get("rate_limit", ""),
        )
        key.secret = secret  # handed to response_add to show once; never saved
        return key


@admin.register(ApiKey)
class ApiKeyAdmin(ServiceAdminMixin, admin.ModelAdmin):
    """Keys are created here (the secret is shown once) and deactivated here; only their rate limit changes."""

    add_form = ApiKeyAddForm
    list_display = [
        "name", "prefix", "scopes_display", "rate_limit", "is_active", "created_at", "last_used_at", "created_by"
    ]  # fmt: skip
    list_filter = ["is_active"]
    list_select_related = ["created_by"]
    search_fields = ["name", "prefix"]
    actions = ["deactivate"]
    readonly_fields = ["name", "prefix", "scopes_display", "is_active", "created_at", "created_by", "last_used_at"]
    fields = [*readonly_fields, "rate_limit"]
    secret_template = "admin/crm/apikey/secret.html"

    def get_fields(self, request, obj=None):
        return ["name", "scopes", "rate_limit"] if obj is None else self.fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def has_delete_permission(self, request, obj=None):
        # Deactivate instead: a key's row keeps who created it and when it was last used.
        return False

    @admin.display(description="scopes")
    def scopes_display(self, obj):
        return ", ".join(obj.scopes)

    @admin.action(
        description="Deactivate",
        description_plural="Deactivate selected API keys",
        permissions=["change"],
        location=[ActionLocation.CHANGE_LIST, ActionLocation.CHANGE_FORM],
    )
    def deactivate(self, request, queryset):
        changed = api_keys_deactivate(ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"Deactivated {changed} API key(s).", messages.SUCCESS)

    def response_add(self, request, obj, post_url_continue=None):
        # Render the secret in the answer to the POST itself: a redirect would have to keep it
        # somewhere (session, message cookie) until the next request.
        context = {
            **self.admin_site.each_context(request),
            "title": "API key created",
            "opts": self.opts,
            "key": obj,
            "secret": obj.secret,
        }
        response = TemplateResponse(request, self.secret_template, context)
        add_never_cache_headers(response)
        return response


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    """Batch jobs, read-only: what ran, how it went, and the error of every item that failed."""

    list_display = ["created_at", "kind", "status", "counts_display", "error_count", "source", "actor", "finished_at"]
    list_filter = ["status", "kind", "source"]
    search_fields = ["=id", "actor"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    fields = [
        "id",
        "kind",
        "status",
        "counts_display",
        "message",
        "source",
        "actor",
        "attempts",
        "created_at",
        "started_at",
        "finished_at",
        "errors_table",
    ]
    readonly_fields = fields
    errors_shown = 500

    def get_queryset(self, request):
        # The list never shows the payload (a batch of up to thousands of items): leave it in the database.
        return super().get_queryset(request).defer("payload")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="counts")
    def counts_display(self, obj):
        return ", ".join(f"{name}: {value}" for name, value in (obj.counts or {}).items()) or "–"

    @admin.display(description="errors")
    def error_count(self, obj):
        return len(obj.errors or [])

    @admin.display(description="Errors per item")
    def errors_table(self, obj):
        errors = obj.errors or []
        if not errors:
            return "None."
        rows = (
            (e.get("index", ""), e.get("code", ""), e.get("field", "") or "", e.get("message", ""))
            for e in errors[: self.errors_shown]
            if isinstance(e, dict)
        )
        more = len(errors) - self.errors_shown
        return format_html(
            '<table class="job-errors"><thead><tr><th>item</th><th>code</th><th>field</th><th>message</th></tr>'
            "</thead><tbody>{}</tbody></table>{}",
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows),
            format_html("<p>… and {} more.</p>", more) if more > 0 else "",
        )


@admin.register(SystemSample)
class SystemAdmin(admin.ModelAdmin):
    """The System page, in place of a list of samples: the index links it for whoever may view them (Admin staff,
    by ``crm/migrations/0012_system_samples.py``). Each figure has its chart of the last 24 hours, drawn from the
    samples the recurring ``system_sample_record`` task takes (``crm/system.py``) as SVG on the server."""

    template = "admin/crm/system.html"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        return [path("", self.admin_site.admin_view(self.system_view), name="crm_systemsample_changelist")]

    def system_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        now = timezone.now()
        start = now - timedelta(hours=24)
        history = series_history(since=start)
        gap = timedelta(seconds=max(3 * settings.SYSTEM_SAMPLE_SECONDS, 180))

        def chart(name: str, label: str, unit: str = "", **labels: str):
            key = series_key(name, tuple(labels), tuple(labels.values()))
            return sparkline(history.get(key, []), start=start, end=now, gap=gap, label=label, unit=unit)

        heartbeats = worker_heartbeats()
        kinds = sorted({"db", *(h["worker"].kind for h in heartbeats)})
        queues = [
            {
                **queue,
                "age_text": value_text(queue["age"], "seconds"),
                "depth_chart": chart("crm_task_queue_depth", f"Tasks waiting in {queue['name']}", queue=queue["name"]),
                "age_chart": chart(
                    "crm_task_queue_oldest_age_seconds",
                    f"Oldest wait in {queue['name']}",
                    "seconds",
                    queue=queue["name"],
                ),
            }
            for queue in queue_rows()
        ]
        webhooks = [
            {
                "backlog": backlog,
                "age_text": value_text((now - backlog.oldest).total_seconds() if backlog.oldest else 0, "seconds"),
                "pending_chart": chart(
                    "crm_webhook_outbox_pending",
                    f"Pending for webhook {backlog.subscription_id}",
                    subscription=str(backlog.subscription_id),
                ),
                "age_chart": chart(
                    "crm_webhook_outbox_oldest_pending_age_seconds",
                    f"Oldest pending for webhook {backlog.subscription_id}",
                    "seconds",
                    subscription=str(backlog.subscription_id),
                ),
            }
            for backlog in subscriptions_backlog()
        ]
        fan_out, _ = fan_out_backlog()
        replica = replica_status()
        disks = [
            {
                **disk,
                "used_text": value_text(disk["used"], "bytes"),
                "free_text": value_text(disk["free"], "bytes"),
                "size_text": value_text(disk["size"], "bytes"),
                "used_chart": chart("crm_disk_used_bytes", f"{disk['name']} used", "bytes", dir=disk["name"]),
                "free_chart": chart("crm_disk_free_bytes", f"{disk['name']} free", "bytes", dir=disk["name"]),
            }
            for disk in disk_rows()
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": "System",
            "opts": self.opts,
            "now": now,
            "sampled": bool(history),
            "sample_seconds": settings.SYSTEM_SAMPLE_SECONDS,
            "heartbeats": [{**h, "age_text": value_text(h["age"], "seconds")} for h in heartbeats],
            "worker_charts": [(kind, chart("crm_workers_alive", f"{kind} workers alive", kind=kind)) for kind in kinds],
            "stale_after": settings.WORKER_HEARTBEAT_STALE_SECONDS,
            "queues": queues,
            "webhooks": webhooks,
            "fan_out": fan_out,
            "fan_out_chart": chart("crm_webhook_outbox_fan_out_pending", "Events waiting for the fan-out"),
            "segment_backlog": refresh_backlog(),
            "segment_lag_chart": chart("crm_segment_refresh_lag_seconds", "Segment refresh lag", "seconds"),
            "failures": failed_recently(limit=10),
            "failure_charts": [
                ("Batch jobs", chart("crm_failures_last_hour", "Batch jobs failed in the hour before", kind="job")),
                ("Tasks", chart("crm_failures_last_hour", "Tasks failed in the hour before", kind="task")),
            ],
            "replica": replica,
            "replica_lag_text": value_text(replica.get("lagSeconds"), "seconds") if replica else "",
            "replica_chart": chart("crm_replica_lag_seconds", "Replica lag", "seconds") if replica else None,
            "disks": disks,
        }
        response = TemplateResponse(request, self.template, context)
        add_never_cache_headers(response)
        return response
