"""Sites in the admin (Admin staff only: the Marketers group gets no permission on them): name, allowed origins,
consent, and the script tag to paste into the site's pages."""

from __future__ import annotations

import re

from django import forms
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import format_html

from tracker.models import Site, origin_normalize


class OriginsField(forms.CharField):
    """Origins one per line (commas and spaces separate too), each normalised to the form browsers send."""

    widget = forms.Textarea(attrs={"rows": 4, "cols": 60})

    def prepare_value(self, value):
        return "\n".join(value) if isinstance(value, list | tuple) else value

    def to_python(self, value):
        origins, errors = [], []
        for item in re.split(r"[\s,]+", super().to_python(value) or ""):
            if not item:
                continue
            try:
                origin = origin_normalize(item)
            except ValueError as exc:
                errors.append(str(exc))
                continue
            if origin not in origins:
                origins.append(origin)
        if errors:
            raise ValidationError(errors)
        return origins


class SiteForm(forms.ModelForm):
    allowed_origins = OriginsField(
        required=False,
        help_text="Scheme and host (and port) of each page that may send, one per line, e.g. https://shop.example. "
        "Requests from any other origin are refused.",
    )

    class Meta:
        model = Site
        fields = ["name", "allowed_origins", "consent_required", "active"]


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    form = SiteForm
    list_display = ["name", "key", "origins", "consent_required", "active"]
    list_filter = ["active", "consent_required"]
    search_fields = ["name", "key"]
    readonly_fields = ["key", "script_tag", "demo_link", "created_at", "updated_at"]

    def get_fields(self, request, obj=None):
        fields = ["name", "allowed_origins", "consent_required", "active"]
        return fields if obj is None else [*fields, *self.readonly_fields]

    @admin.display(description="allowed origins")
    def origins(self, obj: Site) -> str:
        return ", ".join(obj.allowed_origins) or "—"

    @admin.display(description="script tag for the site's pages")
    def script_tag(self, obj: Site) -> str:
        base = settings.PUBLIC_BASE_URL.rstrip("/")
        consent = " data-require-consent" if obj.consent_required else ""
        tag = f'<script async src="{base}/tracker.js" data-site-key="{obj.key}"{consent}></script>'
        if not obj.consent_required:
            return format_html('<pre class="tracker-snippet">{}</pre>', tag)
        # The page's consent banner calls crm('consent', true|false); this queue keeps calls made before the script
        # has loaded (in the site's own script file, or an inline script its CSP allows).
        queue = "window.crm = window.crm || function () { (crm.q = crm.q || []).push(arguments); };"
        return format_html(
            '<pre class="tracker-snippet">{}</pre><p>Before it, in the page\'s own script:</p>'
            "<pre class=\"tracker-queue\">{}</pre><p>and, from its consent banner, <code>crm('consent', true)</code> "
            "or <code>crm('consent', false)</code>.</p>",
            tag,
            queue,
        )

    @admin.display(description="demo page")
    def demo_link(self, obj: Site) -> str:
        url = f"{reverse('tracker-demo')}?site={obj.key}"
        return format_html('<a href="{}" id="tracker-demo-link">Try the site on the demo page</a>', url)
