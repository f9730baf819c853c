"""Attribute definitions (the "params manager"): created through the service, then only described."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.db.models import Count, Q

from crm.admin import ServiceAdminMixin, ServiceModelForm
from profiles.models import AttributeDefinition, Profile
from profiles.services import attribute_definition_create


def attribute_usage_counts(names: list[str]) -> dict[str, int]:
    """How many profiles hold each attribute, for all the names in one pass over the profiles.

    A per-definition subquery would scan the profiles once per row of the list; ``?`` (has_key)
    is not served by the ``jsonb_path_ops`` index, so each of those scans is a full one.
    """
    if not names:
        return {}
    counts = Profile.objects.aggregate(
        **{f"n{i}": Count("pk", filter=Q(attributes__has_key=name)) for i, name in enumerate(names)}
    )
    return {name: counts[f"n{i}"] for i, name in enumerate(names)}


class AttributeDefinitionAddForm(ServiceModelForm):
    # Near-duplicate spellings, reserved names and bad types are the service's to refuse.
    error_fields = {"attributes": "name"}

    class Meta:
        model = AttributeDefinition
        fields = ["name", "type", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3, "cols": 60})}

    def error_field(self, name):
        if name and name.startswith("attributes."):
            name = "name"
        return super().error_field(name)

    def call_service(self):
        return attribute_definition_create(
            name=self.cleaned_data["name"],
            type=self.cleaned_data["type"],
            description=self.cleaned_data["description"],
            created_by=self.actor,
        )


class AttributeDefinitionChangeList(ChangeList):
    def get_results(self, request):
        super().get_results(request)
        # One aggregate for the page's definitions, read by the usage_count column.
        self.result_list = list(self.result_list)
        counts = attribute_usage_counts([d.name for d in self.result_list])
        for definition in self.result_list:
            definition._usage_count = counts[definition.name]


@admin.register(AttributeDefinition)
class AttributeDefinitionAdmin(ServiceAdminMixin, admin.ModelAdmin):
    add_form = AttributeDefinitionAddForm
    list_display = ["name", "type", "description", "created_at", "usage_count"]
    list_filter = ["type"]
    search_fields = ["name", "description"]
    readonly_fields = ["name", "type", "usage_count", "created_at", "created_by"]

    def get_changelist(self, request, **kwargs):
        return AttributeDefinitionChangeList

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["name", "type", "description"]
        return ["name", "type", "description", "usage_count", "created_at", "created_by"]

    def get_readonly_fields(self, request, obj=None):
        # Names and types are immutable: stored values were validated against them.
        return [] if obj is None else self.readonly_fields

    def has_delete_permission(self, request, obj=None):
        # No service deletes a definition (profiles may hold values of it); not from here either.
        return False

    def save_model(self, request, obj, form, change):
        if change:
            # Only the description is editable; there is no rule to check on it.
            obj.save(update_fields=["description"])
        else:
            super().save_model(request, obj, form, change)

    @admin.display(description="profiles using it")
    def usage_count(self, obj):
        if not hasattr(obj, "_usage_count"):
            obj._usage_count = attribute_usage_counts([obj.name])[obj.name]
        return obj._usage_count
