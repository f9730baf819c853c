"""The imports' admin: the wizard (upload → detected format → mapping from the header with a preview → dry run →
run), the job page with its live progress and report download, saved mappings, and incoming integrations (the
secret shown once)."""

from __future__ import annotations

import json
import re
import uuid

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.db import transaction
from django.http import Http404, HttpResponseRedirect, JsonResponse, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.cache import add_never_cache_headers
from django.utils.html import format_html

from api.imports import import_document
from consents.models import Agreement
from crm.actors import actor_of
from crm.admin import ServiceAdminMixin, ServiceModelForm
from crm.errors import DomainError
from imports.integrations import integration_create
from imports.mapping import IDENTIFIERS, mapping_compile
from imports.models import Format, ImportJob, Integration, SavedMapping
from imports.readers import FileUnusable, format_guess, preview
from imports.services import DRAFTS, import_create, import_progress, import_report_csv
from imports.tasks import run_import
from profiles.fields import EDITABLE_BY_API_NAME

DRAFT_KEY = "imports_draft"
TRANSFORM_CHOICES = [("", "—"), ("trim", "trim"), ("lower", "lower"), ("upper", "upper"), ("title", "title")]


def _targets() -> list[str]:
    agreements = [f"agreements.{key}" for key in Agreement.objects.filter(is_active=True).values_list("key", flat=True)]
    return [*IDENTIFIERS, *EDITABLE_BY_API_NAME, "tags", *agreements, "attributes.NAME"]


def _guess(column: str) -> str:
    """A likely target for a column name (empty: skip)."""
    folded = re.sub(r"[^a-z0-9]", "", column.lower())
    known = {
        "email": "email", "emailaddress": "email", "mail": "email",
        "phone": "phone", "phonenumber": "phone", "mobile": "phone", "telephone": "phone",
        "customid": "customId", "customerid": "customId", "crmid": "customId",
        "uuid": "uuid", "tags": "tags", "groups": "tags",
    }  # fmt: skip
    if folded in known:
        return known[folded]
    for api in EDITABLE_BY_API_NAME:
        if folded == api.lower():
            return api
    return ""


class UploadForm(forms.Form):
    file = forms.FileField(help_text="CSV, JSON array, JSONL or XML.")
    format = forms.ChoiceField(choices=[("", "detect"), *Format.choices], required=False)
    record = forms.CharField(required=False, help_text="XML: the element that holds one profile, e.g. customer.")
    saved_mapping = forms.ModelChoiceField(SavedMapping.objects.all(), required=False, label="Saved mapping")


class ImportJobAdmin(admin.ModelAdmin):
    """Imports: started from the wizard, watched on their job page."""

    list_display = ["created", "original_name", "format", "status", "phase", "progress", "counts", "dry_run"]
    list_filter = ["format", "dry_run", "job__status"]
    list_select_related = ["job"]
    search_fields = ["original_name", "=job__id"]
    ordering = ["-job__created_at"]

    @admin.display(description="created", ordering="job__created_at")
    def created(self, obj):
        return obj.job.created_at

    @admin.display(description="status")
    def status(self, obj):
        return obj.job.status

    @admin.display(description="progress")
    def progress(self, obj):
        return f"{import_progress(imp=obj)['percent']} %"

    @admin.display(description="counts")
    def counts(self, obj):
        return ", ".join(f"{k}: {v}" for k, v in (obj.job.counts or {}).items() if v) or "–"

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("wizard/", wrap(self.wizard_upload), name="imports_importjob_wizard"),
            path("wizard/mapping/", wrap(self.wizard_mapping), name="imports_importjob_wizard_mapping"),
            path("<uuid:job_id>/job/", wrap(self.job_page), name="imports_importjob_job"),
            path("<uuid:job_id>/status.json", wrap(self.job_status), name="imports_importjob_status"),
            path("<uuid:job_id>/report.csv", wrap(self.job_report), name="imports_importjob_report"),
            path("<uuid:job_id>/run/", wrap(self.job_run_for_real), name="imports_importjob_run"),
            *super().get_urls(),
        ]

    def add_view(self, request, form_url="", extra_context=None):
        return HttpResponseRedirect(reverse("admin:imports_importjob_wizard"))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return HttpResponseRedirect(reverse("admin:imports_importjob_job", args=[object_id]))

    def _context(self, request, title, **extra):
        return {**self.admin_site.each_context(request), "title": title, "opts": self.opts, **extra}

    def _require(self, request, action: str):
        if not request.user.has_perm(f"imports.{action}_importjob"):
            raise PermissionDenied

    # --- the wizard -------------------------------------------------------------------------------

    def wizard_upload(self, request):
        self._require(request, "add")
        form = UploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            if upload.size > settings.IMPORT_MAX_UPLOAD_BYTES:
                form.add_error("file", f"The file is larger than {settings.IMPORT_MAX_UPLOAD_BYTES} bytes.")
            else:
                head = upload.read(4096)
                upload.seek(0)
                fmt = form.cleaned_data["format"] or format_guess(upload.name, head)
                stored = default_storage.save(f"{DRAFTS}/{uuid.uuid4()}/{_safe(upload.name)}", upload)
                saved = form.cleaned_data["saved_mapping"]
                request.session[DRAFT_KEY] = {
                    "path": stored,
                    "name": upload.name,
                    "format": fmt,
                    "record": form.cleaned_data["record"] or (saved.mapping.get("record", "") if saved else ""),
                    "mapping": saved.mapping if saved else None,
                }
                return HttpResponseRedirect(reverse("admin:imports_importjob_wizard_mapping"))
        return TemplateResponse(
            request,
            "admin/imports/importjob/wizard_upload.html",
            self._context(request, "Import profiles: upload", form=form, step=1),
        )

    def wizard_mapping(self, request):
        self._require(request, "add")
        draft = request.session.get(DRAFT_KEY)
        if not draft or not default_storage.exists(draft["path"]):
            messages.warning(request, "Upload a file first.")
            return HttpResponseRedirect(reverse("admin:imports_importjob_wizard"))
        errors: list[str] = []
        try:
            with default_storage.open(draft["path"], "rb") as handle:
                seen = preview(handle, draft["format"], record=draft["record"], rows=5)
        except FileUnusable as exc:
            seen, errors = {"encoding": "", "delimiter": "", "columns": [], "records": []}, [str(exc)]
        columns = seen["columns"]
        if request.method == "POST" and not errors:
            mapping, errors = self._mapping_from_post(request, columns, draft)
            if not errors:
                return self._start(request, draft, mapping, dry_run="dry_run" in request.POST)
        initial_mapping = draft.get("mapping")
        rows = [
            {
                "index": i,
                "name": column,
                "to": request.POST.get(f"to_{i}", _initial_target(initial_mapping, column)),
                "transform": request.POST.get(f"transform_{i}", ""),
                "samples": [_sample(rec.data, column) for rec in seen["records"]],
            }
            for i, column in enumerate(columns)
        ]
        context = self._context(
            request,
            "Import profiles: mapping",
            step=2,
            draft=draft,
            detected=seen,
            rows=rows,
            targets=_targets(),
            transforms=TRANSFORM_CHOICES,
            mapping_json=request.POST.get(
                "mapping_json", json.dumps(initial_mapping, indent=2) if initial_mapping else ""
            ),
            save_as=request.POST.get("save_as", ""),
            errors=errors,
            records=seen["records"],
        )
        return TemplateResponse(request, "admin/imports/importjob/wizard_mapping.html", context)

    def _mapping_from_post(self, request, columns, draft) -> tuple[dict, list[str]]:
        raw_json = request.POST.get("mapping_json", "").strip()
        if raw_json:
            try:
                mapping = json.loads(raw_json)
            except ValueError as exc:
                return {}, [f"The mapping JSON is not valid: {exc}."]
        else:
            mapping = {"columns": {}}
            for i, column in enumerate(columns):
                target = request.POST.get(f"to_{i}", "").strip()
                if not target:
                    continue
                spec: dict = {"to": target}
                if transform := request.POST.get(f"transform_{i}", ""):
                    spec["transform"] = ["trim", transform] if transform != "trim" else ["trim"]
                mapping["columns"][column] = spec
        if draft["format"] == "xml" and isinstance(mapping, dict):
            mapping.setdefault("record", draft["record"])
        try:
            mapping_compile(mapping)
        except DomainError as exc:
            return mapping, [f"{exc.message} ({exc.field})" if exc.field else exc.message]
        if name := request.POST.get("save_as", "").strip():
            SavedMapping.objects.update_or_create(
                name=name[:128], defaults={"mapping": mapping, "format": draft["format"]}
            )
        return mapping, []

    def _start(self, request, draft, mapping, *, dry_run: bool):
        try:
            with default_storage.open(draft["path"], "rb") as handle, transaction.atomic():
                imp = import_create(
                    file=handle,
                    name=draft["name"],
                    mapping=mapping,
                    fmt=draft["format"],
                    dry_run=dry_run,
                    source="admin",
                    actor=actor_of(request.user),
                )
                transaction.on_commit(lambda: run_import.enqueue(str(imp.pk)))
        except DomainError as exc:
            messages.error(request, f"{exc.message} ({exc.field})" if exc.field else exc.message)
            return HttpResponseRedirect(reverse("admin:imports_importjob_wizard_mapping"))
        if not dry_run:
            default_storage.delete(draft["path"])
            request.session.pop(DRAFT_KEY, None)
        return HttpResponseRedirect(reverse("admin:imports_importjob_job", args=[imp.pk]))

    # --- the job page -----------------------------------------------------------------------------

    def _job(self, request, job_id) -> ImportJob:
        self._require(request, "view")
        imp = ImportJob.objects.select_related("job").filter(pk=job_id).first()
        if imp is None:
            raise Http404("No such import.")
        return imp

    def job_page(self, request, job_id):
        imp = self._job(request, job_id)
        draft = request.session.get(DRAFT_KEY)
        context = self._context(
            request,
            f"Import {imp.original_name}",
            imp=imp,
            doc=import_document(imp),
            can_run=imp.dry_run and request.user.has_perm("imports.add_importjob"),
            draft_matches=bool(draft),
        )
        response = TemplateResponse(request, "admin/imports/importjob/job.html", context)
        add_never_cache_headers(response)
        return response

    def job_status(self, request, job_id):
        response = JsonResponse(import_document(self._job(request, job_id)))
        add_never_cache_headers(response)
        return response

    def job_report(self, request, job_id):
        imp = self._job(request, job_id)
        response = StreamingHttpResponse(import_report_csv(imp=imp), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="import-{imp.pk}-report.csv"'
        return response

    def job_run_for_real(self, request, job_id):
        """After a dry run: the same file and mapping, written."""
        self._require(request, "add")
        imp = self._job(request, job_id)
        if request.method != "POST" or not imp.dry_run:
            return HttpResponseRedirect(reverse("admin:imports_importjob_job", args=[imp.pk]))
        with imp.file.open("rb") as handle, transaction.atomic():
            real = import_create(
                file=handle,
                name=imp.original_name,
                mapping=imp.mapping,
                fmt=imp.format,
                encoding=imp.encoding,
                delimiter=imp.delimiter,
                source="admin",
                actor=actor_of(request.user),
            )
            transaction.on_commit(lambda: run_import.enqueue(str(real.pk)))
        draft = request.session.pop(DRAFT_KEY, None)
        if draft:
            default_storage.delete(draft["path"])
        return HttpResponseRedirect(reverse("admin:imports_importjob_job", args=[real.pk]))


def _safe(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return ("".join(c if c.isalnum() or c in "._-" else "_" for c in base).strip("._") or "import")[:100]


def _initial_target(mapping: dict | None, column: str) -> str:
    if mapping and isinstance(mapping.get("columns"), dict):
        spec = mapping["columns"].get(column)
        return spec.get("to", "") if isinstance(spec, dict) else ""
    return _guess(column)


def _sample(data: dict, column: str) -> str:
    from imports.mapping import _lookup

    value = _lookup(data, column)
    text = "" if value is None else value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text[:60]


admin.site.register(ImportJob, ImportJobAdmin)


class SavedMappingForm(forms.ModelForm):
    class Meta:
        model = SavedMapping
        fields = ["name", "format", "mapping"]

    def clean_mapping(self):
        mapping = self.cleaned_data["mapping"]
        try:
            mapping_compile(mapping)
        except DomainError as exc:
            raise forms.ValidationError(f"{exc.message} ({exc.field})") from None
        return mapping


@admin.register(SavedMapping)
class SavedMappingAdmin(admin.ModelAdmin):
    """Mappings kept by name; the wizard offers them, and the API takes their name (mappingName)."""

    form = SavedMappingForm
    list_display = ["name", "format", "updated_at"]
    search_fields = ["name"]


class IntegrationAddForm(ServiceModelForm):
    class Meta:
        model = Integration
        fields = ["slug", "name", "mapping", "enabled"]

    def call_service(self):
        integration, secret = integration_create(
            slug=self.cleaned_data["slug"],
            name=self.cleaned_data.get("name", ""),
            mapping=self.cleaned_data["mapping"],
            enabled=self.cleaned_data.get("enabled", True),
        )
        integration.plain_secret = secret  # shown once by response_add; stored only encrypted
        return integration


class IntegrationChangeForm(SavedMappingForm):
    class Meta:
        model = Integration
        fields = ["name", "mapping", "enabled"]


@admin.register(Integration)
class IntegrationAdmin(ServiceAdminMixin, admin.ModelAdmin):
    """Incoming integrations: the secret is shown once when created (stored encrypted)."""

    add_form = IntegrationAddForm
    form = IntegrationChangeForm
    list_display = ["slug", "name", "enabled", "endpoint", "created_at", "last_used_at"]
    readonly_fields = ["endpoint", "created_at", "last_used_at"]

    def get_fields(self, request, obj=None):
        return ["slug", "name", "mapping", "enabled"] if obj is None else ["endpoint", "name", "mapping", "enabled"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    @admin.display(description="endpoint")
    def endpoint(self, obj):
        return format_html("<code>POST /integrations/incoming/{}</code>", obj.slug)

    def response_add(self, request, obj, post_url_continue=None):
        context = {**self.admin_site.each_context(request), "title": "Integration created", "opts": self.opts}
        context.update(integration=obj, secret=obj.plain_secret, max_age=settings.INTEGRATION_JWT_MAX_AGE_SECONDS)
        response = TemplateResponse(request, "admin/imports/integration/secret.html", context)
        add_never_cache_headers(response)
        return response
