"""Agreements with their versioned consent texts, and a read-only view of the consent ledger."""

from django import forms
from django.contrib import admin
from django.db.models import Max
from django.utils.html import format_html, format_html_join

from consents.models import Agreement, AgreementText, ConsentRecord


class AgreementForm(forms.ModelForm):
    new_text = forms.CharField(
        label="New consent text",
        required=False,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text="Saving adds this as the next version of the text; earlier versions stay readable, unchanged.",
    )

    class Meta:
        model = Agreement
        fields = ["key", "title", "channel", "requires_double_opt_in", "is_active"]


@admin.register(Agreement)
class AgreementAdmin(admin.ModelAdmin):
    form = AgreementForm
    list_display = [
        "id",
        "key",
        "title",
        "channel",
        "is_default",
        "requires_double_opt_in",
        "is_active",
        "text_version",
        "created_at",
    ]
    list_filter = ["channel", "is_default", "is_active", "requires_double_opt_in"]
    search_fields = ["key", "title"]
    fields = [
        "key",
        "title",
        "channel",
        "requires_double_opt_in",
        "is_active",
        "is_default",
        "created_at",
        "new_text",
        "text_versions",
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(latest_version=Max("texts__version"))

    def get_readonly_fields(self, request, obj=None):
        # The APIs name agreements by key, so it never changes once created.
        readonly = ["is_default", "created_at", "text_versions"]
        return readonly if obj is None else ["key", *readonly]

    def has_delete_permission(self, request, obj=None):
        # The seven channel agreements are built in; consent states and ledger records protect the others.
        return super().has_delete_permission(request, obj) and not (obj is not None and obj.is_default)

    @admin.display(description="text version", ordering="latest_version")
    def text_version(self, obj):
        return f"v{obj.latest_version}" if obj.latest_version else "–"

    @admin.display(description="Text versions")
    def text_versions(self, obj):
        texts = list(obj.texts.order_by("-version")) if obj and obj.pk else []
        if not texts:
            return "No text yet."
        return format_html(
            "<ol reversed>{}</ol>",
            format_html_join(
                "",
                "<li><strong>v{}</strong> ({}): <blockquote>{}</blockquote></li>",
                ((t.version, t.created_at.strftime("%Y-%m-%d %H:%M"), t.text) for t in texts),
            ),
        )

    def save_model(self, request, obj, form, change):
        from consents.services import agreement_text_add

        super().save_model(request, obj, form, change)
        if text := form.cleaned_data.get("new_text", "").strip():
            agreement_text_add(agreement=obj, text=text)


@admin.register(ConsentRecord)
class ConsentRecordAdmin(admin.ModelAdmin):
    """The ledger, read-only: nobody adds, edits or deletes records here."""

    list_display = ["created_at", "client_id", "seq", "agreement", "old_status", "new_status", "source", "actor"]
    list_filter = ["source", "new_status", "agreement"]
    search_fields = ["=client_id", "actor"]
    list_select_related = ["agreement", "text"]
    date_hierarchy = "created_at"
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in ConsentRecord._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AgreementText)
class AgreementTextAdmin(admin.ModelAdmin):
    """Consent texts, read-only: new versions are added from the agreement's page."""

    list_display = ["agreement", "version", "created_at"]
    list_filter = ["agreement"]
    readonly_fields = ["agreement", "version", "text", "created_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
