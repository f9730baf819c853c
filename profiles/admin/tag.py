"""Tags with how many profiles carry each: created and deleted through the services, then only described."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.utils.html import format_html

from crm.actors import actor_of
from crm.admin import InUseAdminMixin, ServiceAdminMixin, ServiceModelForm
from profiles.models import Tag
from profiles.selectors import tag_profile_counts
from profiles.services.tags import tag_create, tag_delete, tag_users

SOURCE = "admin"


class TagAddForm(ServiceModelForm):
    class Meta:
        model = Tag
        fields = ["name", "color", "description"]
        widgets = {
            "color": forms.TextInput(attrs={"placeholder": "#RRGGBB", "size": 8}),
            "description": forms.Textarea(attrs={"rows": 3}),
        }

    def call_service(self):
        return tag_create(
            name=self.cleaned_data["name"],
            color=self.cleaned_data["color"],
            description=self.cleaned_data["description"],
            actor=self.actor,
        )


class TagChangeList(ChangeList):
    def get_results(self, request):
        super().get_results(request)
        # One grouped count for the page's tags (the (tag, profile) index), read by profile_count.
        self.result_list = list(self.result_list)
        counts = tag_profile_counts(tag_ids=[t.pk for t in self.result_list])
        for tag in self.result_list:
            tag._profile_count = counts[tag.pk]


@admin.register(Tag)
class TagAdmin(InUseAdminMixin, ServiceAdminMixin, admin.ModelAdmin):
    in_use = staticmethod(tag_users)
    in_use_label = "names tag"
    add_form = TagAddForm
    list_display = ["name", "swatch", "description", "profile_count", "created_at", "created_by"]
    search_fields = ["name", "description"]
    readonly_fields = ["name", "profile_count", "created_at", "created_by"]

    def get_changelist(self, request, **kwargs):
        return TagChangeList

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["name", "color", "description"]
        return ["name", "color", "description", "profile_count", "created_at", "created_by"]

    def get_readonly_fields(self, request, obj=None):
        # A tag's name is what the timeline's "tag added" events and the APIs refer to: fixed once created.
        return [] if obj is None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:
            # Colour and description carry no rule beyond the model's own checks (run by the form).
            obj.save(update_fields=["color", "description"])
        else:
            super().save_model(request, obj, form, change)

    def delete_model(self, request, obj):
        tag_delete(tag=obj, source=SOURCE, actor=actor_of(request.user))

    def delete_queryset(self, request, queryset):
        for tag in queryset:
            tag_delete(tag=tag, source=SOURCE, actor=actor_of(request.user))

    @admin.display(description="colour")
    def swatch(self, obj):
        if not obj.color:
            return "–"
        return format_html('<span class="profile-tag" style="--tag-color: {}">{}</span>', obj.color, obj.color)

    @admin.display(description="profiles")
    def profile_count(self, obj):
        if not hasattr(obj, "_profile_count"):
            obj._profile_count = tag_profile_counts(tag_ids=[obj.pk])[obj.pk]
        return obj._profile_count
