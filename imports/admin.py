"""The imports' admin: the wizard (upload → detected format, and the export it is → mapping from the header or the
export's preset, with a preview that shows the items of list cells → dry run → run), the job page with its live
progress and report download, saved mappings, and incoming integrations (the secret shown once)."""

from __future__ import annotations

import json
import uuid
from datetime import date, time

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
from imports.mapping import IDENTIFIERS, mapping_compile, record_value, split_items
from imports.models import Format, ImportJob, Integration, SavedMapping
from imports.presets import target_guess
from imports.readers import FileUnusable, format_guess, preview
from imports.services import DRAFTS, ImportRefused, import_create, import_detect, import_progress, import_report_csv
from imports.tasks import run_import
from profiles.fields import EDITABLE_BY_API_NAME

DRAFT_KEY = "imports_draft"
TRANSFORM_CHOICES = [("", "—"), ("trim", "trim"), ("lower", "lower"), ("upper", "upper"), ("title", "title")]


def _targets() -> list[str]:
    agreements = [f"agreements.{key}" for key in Agreement.objects.filter(is_active=True).values_list("key", flat=True)]
    return [*IDENTIFIERS, *EDITABLE_BY_API_NAME, "tags", *agreements, "attributes.NAME"]


class UploadForm(forms.Form):
    file = forms.FileField(
        help_text="CSV, JSON array, JSONL, XML or XLSX. The contacts exports of Mailchimp, HubSpot, Klaviyo, Brevo, "
        "Shopify (customers), Salesforce (contacts report) and this platform's CSV export are recognised and get "
        "their mapping proposed."
    )
    format = forms.ChoiceField(choices=[("", "detect"), *Format.choices], required=False)
    record = forms.CharField(required=False, help_text="XML: the element that holds one profile, e.g. customer.")
    sheet = forms.CharField(required=False, help_text="XLSX: the worksheet to read (empty: the first).")
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
                draft = {
                    "path": stored,
                    "name": upload.name,
                    "format": fmt,
                    "record": form.cleaned_data["record"] or (saved.mapping.get("record", "") if saved else ""),
                    "sheet": form.cleaned_data["sheet"] or (saved.mapping.get("sheet", "") if saved else ""),
                    "mapping": saved.mapping if saved else None,
                    "preset": "",
                }
                if saved is None:
                    draft.update(_proposal(draft))
                request.session[DRAFT_KEY] = draft
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
                seen = preview(handle, draft["format"], record=draft["record"], sheet=draft.get("sheet", ""), rows=5)
        except FileUnusable as exc:
            seen, errors = {"encoding": "", "delimiter": "", "columns": [], "records": []}, [str(exc)]
        columns = seen["columns"]
        initial_mapping = draft.get("mapping")
        shown = initial_mapping  # the mapping whose list columns the preview splits
        if request.method == "POST" and not errors:
            checking = "preview" not in request.POST
            mapping, errors = self._mapping_from_post(request, columns, draft, save=checking)
            if not errors and checking:
                return self._start(request, draft, mapping, dry_run="dry_run" in request.POST)
            shown = mapping
        rows = [
            {
                "index": i,
                "name": column,
                "to": request.POST.get(f"to_{i}", _initial_target(initial_mapping, column)),
                "transform": request.POST.get(f"transform_{i}", ""),
                "split": request.POST.get(f"split_{i}", _initial_split(initial_mapping, column)),
                "samples": [_sample(rec.data, column, _spec(shown, column)) for rec in seen["records"]],
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

    def _mapping_from_post(self, request, columns, draft, *, save: bool = True) -> tuple[dict, list[str]]:
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
                if split := request.POST.get(f"split_{i}", ""):
                    spec["split"] = split
                mapping["columns"][column] = spec
        if draft["format"] == "xml" and isinstance(mapping, dict):
            mapping.setdefault("record", draft["record"])
        if draft["format"] == "xlsx" and draft.get("sheet") and isinstance(mapping, dict):
            mapping.setdefault("sheet", draft["sheet"])
        try:
            mapping_compile(mapping)
        except DomainError as exc:
            return mapping, [f"{exc.message} ({exc.field})" if exc.field else exc.message]
        if save and (name := request.POST.get("save_as", "").strip()):
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


def _proposal(draft: dict) -> dict:
    """The mapping proposed for a recognised export (none for other files: the table guesses from the header)."""
    try:
        with default_storage.open(draft["path"], "rb") as handle:
            detected = import_detect(
                file=handle, name=draft["name"], fmt=draft["format"], sheet=draft["sheet"], record=draft["record"]
            )
    except ImportRefused:
        return {}  # the mapping step shows why the file cannot be read
    if detected["preset"] is None:
        return {}
    return {"mapping": detected["mapping"], "preset": detected["presetLabel"]}


def _spec(mapping: dict | None, column: str) -> dict:
    columns = mapping.get("columns") if isinstance(mapping, dict) else None
    spec = columns.get(column) if isinstance(columns, dict) else None
    return spec if isinstance(spec, dict) else {}


def _initial_target(mapping: dict | None, column: str) -> str:
    if mapping and isinstance(mapping.get("columns"), dict):
        return _spec(mapping, column).get("to", "")
    return target_guess(column)


def _initial_split(mapping: dict | None, column: str) -> str:
    split = _spec(mapping, column).get("split", "")
    return split if isinstance(split, str) else ""


def _sample(data: dict, column: str, spec: dict) -> dict:
    """A cell as the preview shows it: its text, and the items it gives when its column is a list."""
    value = record_value(data, column)
    if value is None:
        text = ""
    elif isinstance(value, str):
        text = value
    elif isinstance(value, date | time):  # a spreadsheet's date cell
        text = value.isoformat()
    else:
        text = json.dumps(value, ensure_ascii=False, default=str)
    items = None
    split = spec.get("split")
    if isinstance(value, str) and isinstance(split, str) and split:
        items = split_items(value, split)
    elif spec.get("type") == "list":
        try:
            parsed = json.loads(value) if isinstance(value, str) else value
        except ValueError:
            parsed = None
        if isinstance(parsed, list):
            items = [item if isinstance(item, str) else json.dumps(item) for item in parsed]
    return {"text": text[:60], "items": [item[:40] for item in items[:10]] if items is not None else None}


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
