"""The profiles list (search, filters, bulk tag and export actions, an estimated count) and the profile card.

The card is the change view: ``templates/admin/profiles/profile/change_form.html`` lays the admin's own form
out in three columns and adds panels fed by ``card.card_context`` through ``change_view(extra_context=…)``;
its side actions are admin URLs (``card_actions``).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import ActionLocation, ShowFacets, helpers
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Case, Q, Value, When
from django.db.models.functions import Lower
from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.timezone import localtime
from django.utils.translation import gettext

from crm.actors import actor_of
from crm.admin import ServiceAdminMixin
from crm.errors import DomainError
from crm.replica import replica_reads
from exports.stream import FORMATS, export_chunks
from privacy.services import erasure_preview, profile_erase
from profiles import selectors
from profiles.admin.card import card_context, card_permissions
from profiles.admin.card_actions import CardActions
from profiles.admin.filters import (
    AgreementStateFilter,
    CityFilter,
    DateRangeFilter,
    RecognizedFilter,
    SegmentListFilter,
    TagFilter,
    tag_choices,
)
from profiles.admin.forms import SOURCE, ProfileAddForm, ProfileForm, attribute_field_name, attribute_formfield
from profiles.fields import ADDRESS, DEMOGRAPHICS, section_columns
from profiles.models import AttributeDefinition, Profile, Tag
from profiles.services.tags import tag_create, tags_add, tags_remove


class ProfileActionForm(helpers.ActionForm):
    tag = forms.CharField(
        label="Tag:",
        required=False,
        max_length=64,
        widget=forms.TextInput(attrs={"placeholder": "tag name", "list": "profile-tag-names", "size": 14}),
    )


class EstimatedCountPaginator(Paginator):
    """Counts an unfiltered list from PostgreSQL's statistics once the table is large (no COUNT(*) per page)."""

    large_table = 100_000
    # On a large table, a filtered result the planner puts at this many rows or more shows the estimate: an exact
    # COUNT(*) of tens of thousands of rows costs more than the page itself.
    exact_count_limit = 10_000

    @cached_property
    def table_estimate(self) -> int:
        return selectors.table_row_estimate(model=self.object_list.model)

    @property
    def table_is_large(self) -> bool:
        return self.table_estimate >= self.large_table

    @cached_property
    def count(self):
        if not self.table_is_large:
            return super().count
        if not self.object_list.query.has_filters():
            return self.table_estimate
        # A filtered list on a large table: the planner's estimate (one EXPLAIN, under a millisecond)
        # when it says the result is large, where an exact COUNT(*) would scan much of the table;
        # small results are counted exactly.
        estimate = self.filtered_estimate
        return estimate if estimate >= self.exact_count_limit else super().count

    @cached_property
    def filtered_estimate(self) -> int:
        return selectors.queryset_row_estimate(queryset=self.object_list)


class ProfileChangeList(ChangeList):
    def __init__(self, request, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        # The filter's counts are one aggregate over the listed rows: always shown after a search
        # (it narrows them) or on a small table; on a large one, on request ("Show counts").
        if not self.add_facets and (self.query or not self.paginator.table_is_large):
            self.add_facets = True
            self.is_facets_optional = False

    def get_queryset(self, request, exclude_parameters=None):
        # The list shows no custom attributes: leave the JSONB column out of its rows.
        return super().get_queryset(request, exclude_parameters).defer("attributes")

    def url_for_result(self, result):
        # Two columns of each row link to the card (list_display_links): reverse its URL once per row.
        urls = self.__dict__.setdefault("_result_urls", {})
        if result.pk not in urls:
            urls[result.pk] = super().url_for_result(result)
        return urls[result.pk]

    def get_results(self, request):
        super().get_results(request)
        # The page's tags in one query, whatever the page size (read by ProfileAdmin.tag_list).
        self.result_list = list(self.result_list)
        tags = selectors.tags_for(profile_ids=[p.pk for p in self.result_list])
        for profile in self.result_list:
            profile._tag_names = tags[profile.pk]


@admin.register(Profile)
class ProfileAdmin(ServiceAdminMixin, admin.ModelAdmin):
    form = ProfileForm
    add_form = ProfileAddForm
    # Chosen to fit 1280–1920 px with the navigation sidebar open; long values are cut with an ellipsis and shown
    # whole in a tooltip (card.css). Phone, created and recognized are on the card, and filters.
    list_display = ["client_id", "contact", "name", "custom_id_cell", "city_cell", "tag_list", "last_activity"]
    list_display_links = ["client_id", "contact"]
    list_filter = [
        RecognizedFilter,
        TagFilter,
        SegmentListFilter,
        AgreementStateFilter,
        CityFilter,
        ("created_at", DateRangeFilter),
        ("last_activity_date", DateRangeFilter),
    ]
    actions = ["add_tag", "remove_tag", "export_csv"]
    save_on_top = False  # the card's Save row sticks to the bottom of the window instead (card.css)
    action_form = ProfileActionForm
    bulk_limit = 50_000  # profiles one bulk tag action may touch (a "select all" over a million is refused)
    show_facets = ShowFacets.ALLOW  # and more: see ProfileChangeList
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    list_per_page = 50  # 100 rows cost ~1 ms each to render on a large table (bench/b10_admin.py)
    # Searching is profile_search_q's (get_search_results); these only show the search box.
    search_fields = ["email", "phone", "custom_id", "identifiers__value", "first_name", "last_name"]
    search_help_text = (
        "An e-mail, phone, customId, uuid or clientId (exact matches first), or a part of an e-mail or of a name."
    )
    readonly_fields = ["client_id", "recognized", "created_at", "updated_at", "last_activity_date"]
    # The registry's sections; the names share a row.
    native_fieldsets = [
        (
            DEMOGRAPHICS,
            {
                "fields": [
                    ("first_name", "last_name"),
                    *(c for c in section_columns(DEMOGRAPHICS) if c not in {"first_name", "last_name"}),
                ]
            },
        ),
        (ADDRESS, {"fields": list(section_columns(ADDRESS)), "classes": ["collapse"]}),
    ]

    # --- list -------------------------------------------------------------------------------

    def get_changelist(self, request, **kwargs):
        return ProfileChangeList

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        # Read once per request (the filters' counts search again); a list of ids keeps the search's OR on indexes.
        cache = request.__dict__.setdefault("_profile_search_exact", {}) if request is not None else {}
        if term not in cache:
            cache[term] = selectors.profile_search_exact_ids(term=term)
        exact = cache[term]
        lowered = term.lower()
        queryset = queryset.alias(_first=Lower("first_name"), _last=Lower("last_name"))
        # Exact identifier matches first, then e-mails and names that start with the term, then the rest, each in
        # the list's own order. (Ranking by an expression also keeps the planner on the search's indexes rather than
        # walking the primary key backwards in the hope of meeting 50 matches early.)
        starts = Q(email__startswith=lowered) | Q(_first__startswith=lowered) | Q(_last__startswith=lowered)
        queryset = queryset.alias(
            _rank=Case(When(pk__in=exact, then=Value(0)), When(starts, then=Value(1)), default=Value(2))
        )
        ordering = ["_rank", *queryset.query.order_by]
        return queryset.filter(selectors.profile_search_q(term=term, exact_ids=exact)).order_by(*ordering), False

    @admin.display(description="clientId", ordering="id")
    def client_id(self, obj):
        return obj.pk

    @admin.display(description="e-mail / uuid", ordering="email")
    def contact(self, obj):
        """The e-mail; for an anonymous profile its uuid, marked, so anonymous rows can be told apart."""
        if obj.email:
            return format_html('<span class="cell-cut" title="{}">{}</span>', obj.email, obj.email)
        label = obj.custom_id or obj.phone
        if label and not obj.anonymous:
            return format_html('<span class="cell-cut" title="{}">{}</span>', label, label)
        return format_html(
            '<span class="cell-cut profile-anonymous" title="anonymous · uuid {}">{}</span>', obj.uuid, obj.uuid
        )

    @admin.display(description="name", ordering="last_name")
    def name(self, obj):
        name = " ".join(part for part in (obj.first_name, obj.last_name) if part)
        if name:
            return format_html('<span class="cell-cut" title="{}">{}</span>', name, name)
        return format_html('<span class="profile-anonymous-name">{}</span>', "anonymous") if obj.anonymous else "–"

    @admin.display(description="customId", ordering="custom_id")
    def custom_id_cell(self, obj):
        value = obj.custom_id
        return format_html('<span class="cell-cut" title="{}">{}</span>', value, value) if value else "–"

    @admin.display(description="city", ordering="city")
    def city_cell(self, obj):
        value = obj.city
        return format_html('<span class="cell-cut" title="{}">{}</span>', value, value) if value else "–"

    @admin.display(description="last activity", ordering="last_activity_date")
    def last_activity(self, obj):
        when = obj.last_activity_date
        if when is None:
            return "never"
        when = localtime(when)
        return format_html(
            '<time datetime="{}" title="{}">{}</time>',
            when.isoformat(),
            f"{when:%Y-%m-%d %H:%M}",
            f"{when.day} {when:%b %Y}",
        )

    @admin.display(description="recognized", boolean=True)
    def recognized(self, obj):
        return not obj.anonymous

    def action_checkbox(self, obj):
        # Django's own markup (CheckboxInput through the form renderer), written out: one template render per row
        # was ~15 % of a 100-row page's time (docs/benchmarks.md, B10).
        label = format_html(gettext("Select this object for an action - {}"), str(obj))
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" aria-label="{}">',
            helpers.ACTION_CHECKBOX_NAME,
            str(obj.pk),
            label,
        )

    @admin.display(description="tags")
    def tag_list(self, obj):
        names = getattr(obj, "_tag_names", None)
        if names is None:
            names = selectors.tags_for(profile_ids=[obj.pk])[obj.pk]
        if not names:
            return ""
        tags = format_html_join(" ", '<span class="profile-tag">{}</span>', ((n,) for n in names))
        return format_html('<span class="cell-cut profile-tags" title="{}">{}</span>', ", ".join(names), tags)

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "tag_names": [name for _, name in tag_choices(request)]}
        return super().changelist_view(request, extra_context)

    # --- bulk actions -------------------------------------------------------------------------

    def has_export_permission(self, request):
        return request.user.has_perm(f"{self.opts.app_label}.export_profile")

    def _action_tag(self, request, create: bool) -> Tag | None:
        name = (request.POST.get("tag") or request.POST.get(f"{ActionLocation.CHANGE_FORM.value}-tag") or "").strip()
        if not name:
            self.message_user(request, "Type the name of a tag next to the action.", messages.WARNING)
            return None
        tag = Tag.objects.filter(name__iexact=name).first()
        if tag is None and create:
            if not card_permissions(request.user)["create_tag"]:
                raise PermissionDenied
            try:
                tag = tag_create(name=name, actor=actor_of(request.user))
            except DomainError as exc:
                self.message_user(request, f"Tag: {exc.message}", messages.ERROR)
                return None
        if tag is None:
            self.message_user(request, f"There is no tag {name}.", messages.WARNING)
        return tag

    def _action_ids(self, request, queryset) -> list[int] | None:
        ids = list(queryset.order_by().values_list("pk", flat=True)[: self.bulk_limit + 1])
        if len(ids) > self.bulk_limit:
            self.message_user(
                request, f"At most {self.bulk_limit:,} profiles at a time; narrow the list first.", messages.ERROR
            )
            return None
        return ids

    @admin.action(description="Add a tag to the selected profiles", permissions=["change"])
    def add_tag(self, request, queryset):
        if (tag := self._action_tag(request, create=True)) and (ids := self._action_ids(request, queryset)):
            added = tags_add(profiles=ids, tags=[tag], source=SOURCE, actor=actor_of(request.user))
            self.message_user(request, f"Tag {tag.name} added to {added} profile(s).", messages.SUCCESS)

    @admin.action(description="Remove a tag from the selected profiles", permissions=["change"])
    def remove_tag(self, request, queryset):
        if (tag := self._action_tag(request, create=False)) and (ids := self._action_ids(request, queryset)):
            removed = tags_remove(profiles=ids, tags=[tag], source=SOURCE, actor=actor_of(request.user))
            self.message_user(request, f"Tag {tag.name} removed from {removed} profile(s).", messages.SUCCESS)

    @admin.action(
        description="Export as CSV",
        permissions=["export"],
        location=[ActionLocation.CHANGE_LIST, ActionLocation.CHANGE_FORM],
    )
    def export_csv(self, request, queryset):
        """The selection as CSV, streamed by the one exporter (exports.stream): the API's columns and rules; from
        the read replica when one is configured."""
        with replica_reads():
            chunks = export_chunks(queryset=queryset, fmt="csv", bom=bool(request.POST.get("bom")))
        response = StreamingHttpResponse(chunks, content_type=FORMATS["csv"])
        stamp = localtime().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = f'attachment; filename="profiles-{stamp}.csv"'
        return response

    # --- the card (change form) ------------------------------------------------------------------

    def get_urls(self):
        return [*CardActions(self).urls(), *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        profile = self.get_object(request, object_id)
        if profile is not None and self.has_view_or_change_permission(request, profile):
            # On a card, Save stays on the card; "Save and add another" and "Save and continue" make no sense there.
            extra_context = {
                **(extra_context or {}),
                **card_context(request, profile),
                "show_save_and_add_another": False,
                "show_save_and_continue": False,
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def response_post_save_change(self, request, obj):
        return HttpResponseRedirect(reverse("admin:profiles_profile_change", args=[obj.pk]))

    def get_object(self, request, object_id, from_field=None):
        # change_view asks twice (for the card, then for the form); one query per request.
        cache = request.__dict__.setdefault("_profile_objects", {})
        key = (object_id, from_field)
        if key not in cache:
            cache[key] = super().get_object(request, object_id, from_field)
        return cache[key]

    # --- change form --------------------------------------------------------------------------

    def attribute_definitions(self, request) -> list[AttributeDefinition]:
        # get_fieldsets and get_form both need them; load them once per request.
        if not hasattr(request, "_attribute_definitions"):
            request._attribute_definitions = list(AttributeDefinition.objects.order_by("name"))
        return request._attribute_definitions

    def get_fieldsets(self, request, obj=None):
        definitions = self.attribute_definitions(request)
        # On the card, identifiers and activity have panels of their own (card.py); the fieldsets are the inputs.
        head = [("Identifiers", {"fields": ["email", "phone", "custom_id", "uuid"]})] if obj is None else []
        attributes = {
            "fields": [attribute_field_name(d) for d in definitions],
            "description": "Empty means not set: clearing an input deletes the attribute. "
            "New attributes are defined under Attribute definitions.",
        }
        return [*head, *self.native_fieldsets, ("Custom attributes", attributes)]

    def get_form(self, request, obj=None, change=False, **kwargs):
        definitions = self.attribute_definitions(request)
        base = kwargs.pop("form", self.add_form if obj is None else self.form)
        fields = {attribute_field_name(d): attribute_formfield(d) for d in definitions}
        kwargs["form"] = type(base.__name__, (base,), {**fields, "definitions": definitions})
        return super().get_form(request, obj, change, **kwargs)

    # --- delete -------------------------------------------------------------------------------

    def delete_view(self, request, object_id, extra_context=None):
        from profiles.models import ClientIdAlias

        merged = ClientIdAlias.objects.filter(profile_id=object_id).order_by("old_client_id")
        extra_context = {
            "title": "Erase profile",
            **(extra_context or {}),
            "merged_client_ids": list(merged.values_list("old_client_id", flat=True)) if object_id.isdigit() else [],
        }
        return super().delete_view(request, object_id, extra_context)

    def get_deleted_objects(self, objs, request):
        """The confirmation names what erasure removes (counts per kind, from the erasure service) instead of
        listing every event row: deleting a profile is erasing it, and a profile may have thousands of events."""
        objs = list(objs)
        totals: dict[str, int] = {}
        for profile in objs:
            for name, count in erasure_preview(profile=profile).items():
                totals[name] = totals.get(name, 0) + count
        summary = {name: count for name, count in totals.items() if count}
        summary = {Profile._meta.verbose_name_plural: len(objs), **summary}
        perms_needed = set() if self.has_delete_permission(request) else {Profile._meta.verbose_name}
        return [str(profile) for profile in objs], summary, perms_needed, []

    def delete_model(self, request, obj):
        profile_erase(profile=obj, source=SOURCE, actor=actor_of(request.user))

    def delete_queryset(self, request, queryset):
        for profile in queryset:
            profile_erase(profile=profile, source=SOURCE, actor=actor_of(request.user))
