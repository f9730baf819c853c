"""The segments list (counts, last evaluated, build time), the segment builder, and expressions.

The builder is a small script (``segments/static/segments/builder.js``) that edits the condition tree as
controls — add a condition, pick its field, operator and value, nest all/any/none groups — and asks the
``count`` URL for a live count and the first profiles while the marketer edits. The tree is kept in a hidden
form field, so Save goes through the admin's form and the segment services like any write.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin
from django.http import JsonResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from consents.models import Agreement
from crm.actors import actor_of
from crm.admin import InUseAdminMixin, ServiceAdminMixin, ServiceModelForm
from crm.errors import DomainError
from profiles.conditions import AGREEMENT_STATES, ATTRIBUTE_TYPES, EVENT_OPS, TYPE_OPS, ConditionError
from profiles.fields import COMMERCE_FIGURES, FILTER_FIELDS
from profiles.models import AttributeDefinition, Profile, Tag
from segments.expressions import expression_validate
from segments.models import Expression, Segment
from segments.services import segment_create, segment_delete, segment_update, tree_preview
from segments.usage import segment_users

PREVIEW_ROWS = 10


class SegmentForm(ServiceModelForm):
    tree = forms.JSONField(
        label="Conditions",
        widget=forms.Textarea(attrs={"class": "segment-tree-json", "rows": 4}),
        help_text="Built with the controls above; the JSON form is what the API takes.",
    )

    class Meta:
        model = Segment
        fields = ["name", "description", "tree"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}

    def error_field(self, name):
        if name and name.startswith("filter"):
            return "tree"
        return super().error_field(name)

    def domain_error(self, exc):
        if isinstance(exc, ConditionError):  # on the tree, with the bad node's path
            self.add_error("tree", f"{exc.field}: {exc.message}")
        else:
            super().domain_error(exc)

    def call_service(self):
        data = self.cleaned_data
        if self.instance.pk is None:
            return segment_create(
                name=data["name"], description=data.get("description", ""), tree=data["tree"], actor=self.actor
            )
        stored = Segment.objects.get(pk=self.instance.pk)
        return segment_update(
            segment=stored,
            name=data["name"],
            description=data.get("description", ""),
            tree=data["tree"],
            actor=self.actor,
        )


def builder_meta(request) -> dict:
    """What the builder offers: fields with their ops, attributes by type, tags, agreements, segments."""
    return {
        "fields": [{"name": name, "type": f.type, "ops": TYPE_OPS[f.type]} for name, f in FILTER_FIELDS.items()],
        "attributes": [
            {"name": name, "type": ATTRIBUTE_TYPES[t], "ops": TYPE_OPS[ATTRIBUTE_TYPES[t]]}
            for name, t in AttributeDefinition.objects.order_by("name").values_list("name", "type")
        ],
        "tags": [{"id": pk, "name": name} for pk, name in Tag.objects.order_by("name").values_list("pk", "name")[:500]],
        "agreements": [{"key": k, "title": t} for k, t in Agreement.objects.values_list("key", "title")],
        "states": list(AGREEMENT_STATES),
        "eventOps": list(EVENT_OPS),
        "commerce": [{"name": name, "type": f.type, "ops": TYPE_OPS[f.type]} for name, f in COMMERCE_FIGURES.items()],
        "segments": [
            {"id": pk, "name": name} for pk, name in Segment.objects.order_by("name").values_list("pk", "name")
        ],
        "countUrl": reverse("admin:segments_segment_count"),
    }


@admin.register(Segment)
class SegmentAdmin(InUseAdminMixin, ServiceAdminMixin, admin.ModelAdmin):
    in_use = staticmethod(segment_users)
    in_use_label = "uses segment"
    form = SegmentForm
    list_display = ["name", "count_cell", "last_evaluated_at", "build_time", "time_relative", "profiles_link"]
    list_display_links = ["name"]
    search_fields = ["name", "description"]
    readonly_fields = ["created_by", "updated_by", "last_count", "last_evaluated_at", "evaluation_ms"]
    change_form_template = "admin/segments/segment/change_form.html"

    def get_fieldsets(self, request, obj=None):
        main = (None, {"fields": ["name", "description", "tree"]})
        if obj is None:
            return [main]
        return [main, ("Last evaluation", {"fields": list(self.readonly_fields)})]

    @admin.display(description="profiles", ordering="last_count")
    def count_cell(self, obj):
        return "–" if obj.last_count is None else f"{obj.last_count:,}"

    @admin.display(description="build time", ordering="evaluation_ms")
    def build_time(self, obj):
        return "–" if obj.evaluation_ms is None else f"{obj.evaluation_ms:,.0f} ms"

    @admin.display(description="")
    def profiles_link(self, obj):
        url = reverse("admin:profiles_profile_changelist") + f"?segment={obj.pk}"
        return format_html('<a href="{}">show profiles</a>', url)

    def get_urls(self):
        view = self.admin_site.admin_view(require_POST(self.count_view))
        return [path("count/", view, name="segments_segment_count"), *super().get_urls()]

    def count_view(self, request):
        """The builder's live count: a tree (JSON body) → its count, time taken and the first profiles."""
        if not self.has_view_permission(request):
            return JsonResponse({"error": "You may not read segments."}, status=403)
        try:
            tree = json.loads(request.body or b"null")
            preview = tree_preview(tree=tree, size=PREVIEW_ROWS)
        except ValueError:
            return JsonResponse({"error": "The conditions are not valid JSON.", "field": "filter"}, status=400)
        except DomainError as exc:
            return JsonResponse({"error": exc.message, "field": exc.field}, status=400)

        profiles = Profile.objects.filter(pk__in=preview.profile_ids).only("email", "first_name", "last_name", "uuid")
        by_id = {p.pk: p for p in profiles}
        rows = [
            {
                "id": pid,
                "label": str(by_id[pid]),
                "url": reverse("admin:profiles_profile_change", args=[pid]),
            }
            for pid in preview.profile_ids
            if pid in by_id
        ]
        return JsonResponse({"count": preview.count, "tookMs": preview.took_ms, "preview": rows})

    def render_change_form(self, request, context, *args, **kwargs):
        context["builder_meta"] = builder_meta(request)
        return super().render_change_form(request, context, *args, **kwargs)

    def delete_model(self, request, obj):
        segment_delete(segment=obj, actor=actor_of(request.user))

    def delete_queryset(self, request, queryset):
        for segment in queryset:
            self.delete_model(request, segment)


class ExpressionForm(forms.ModelForm):
    class Meta:
        model = Expression
        fields = ["name", "label", "expression", "type", "format", "position"]

    def clean_expression(self):
        text = self.cleaned_data["expression"]
        try:
            expression_validate(text)
        except DomainError as exc:
            raise forms.ValidationError(exc.message) from None
        return text


@admin.register(Expression)
class ExpressionAdmin(admin.ModelAdmin):
    form = ExpressionForm
    list_display = ["name", "label", "expression", "type", "format", "position"]
    list_editable = ["position"]
