"""The profiles list and the profile change form (a standard one; the three-column card comes later)."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin import ShowFacets
from django.contrib.admin.views.main import ChangeList
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Count, Q
from django.db.models.functions import Lower
from django.utils.formats import date_format
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.timezone import localtime

from crm.admin import ServiceAdminMixin
from crm.errors import DomainError
from profiles.admin.forms import SOURCE, ProfileAddForm, ProfileForm, attribute_field_name, attribute_formfield
from profiles.models import AttributeDefinition, Identifier, IdentifierKind, Profile
from profiles.models.profile import recognized_q
from profiles.services import identifier_normalize, profile_delete

MAX_CLIENT_ID = 2**63 - 1


def profile_search_q(term: str) -> Q:
    """Profiles a free-text admin search names: any identifier (exactly, once normalised), clientId, or name.

    Identifiers are matched in the ``Identifier`` table, so a profile's secondary uuids (and any
    e-mail or phone it owns) are found too. Names match whole, in any case: a first or last name,
    or "first last" / "last first". A term that is an e-mail, phone, uuid or number is not also
    tried as a name, so those searches stay index lookups.
    """
    pairs = []
    for kind in IdentifierKind.values:
        try:
            pairs.append((kind, identifier_normalize(kind, term)))
        except DomainError:
            continue  # the term is not a valid identifier of this kind
    q = Q(pk__in=Identifier.objects.filter(_any(Q(kind=k, value=v) for k, v in pairs)).values("profile_id"))
    if term.isdigit():
        if int(term) <= MAX_CLIENT_ID:
            q |= Q(pk=int(term))
        return q
    if any(kind != IdentifierKind.CUSTOM_ID for kind, _ in pairs):
        return q
    # _first/_last are Lower() aliases (see get_search_results): the last name's expression index serves them.
    words = term.lower().split()
    whole = " ".join(words)
    q |= Q(_first=whole) | Q(_last=whole)
    for split in range(1, len(words)):
        head, tail = " ".join(words[:split]), " ".join(words[split:])
        q |= Q(_first=head, _last=tail) | Q(_first=tail, _last=head)
    return q


def _any(qs) -> Q:
    combined = Q(pk__in=[])
    for q in qs:
        combined |= q
    return combined


class RecognizedFilter(admin.SimpleListFilter):
    title = "identity"
    parameter_name = "recognized"

    def lookups(self, request, model_admin):
        return [("yes", "recognized"), ("no", "anonymous")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.recognized()
        if self.value() == "no":
            return queryset.anonymous()
        return queryset

    def get_facet_counts(self, pk_attname, filtered_qs):
        # Both counts in the one aggregate over the filtered list, instead of the default "pk IN (subquery)".
        return {
            "0__c": Count(pk_attname, filter=recognized_q()),
            "1__c": Count(pk_attname, filter=~recognized_q()),
        }


class EstimatedCountPaginator(Paginator):
    """Counts an unfiltered list from PostgreSQL's statistics once the table is large (no COUNT(*) per page)."""

    large_table = 100_000

    @cached_property
    def table_estimate(self) -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                [self.object_list.model._meta.db_table],
            )
            row = cursor.fetchone()
        return row[0] if row else -1  # -1: never analysed

    @property
    def table_is_large(self) -> bool:
        return self.table_estimate >= self.large_table

    @cached_property
    def count(self):
        if not self.object_list.query.has_filters() and self.table_is_large:
            return self.table_estimate
        return super().count


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


@admin.register(Profile)
class ProfileAdmin(ServiceAdminMixin, admin.ModelAdmin):
    form = ProfileForm
    add_form = ProfileAddForm
    list_display = [
        "client_id",
        "email",
        "custom_id",
        "phone",
        "name",
        "city",
        "recognized",
        "created_at",
        "last_activity_date",
    ]
    list_display_links = ["client_id", "email"]
    list_filter = [RecognizedFilter]
    show_facets = ShowFacets.ALLOW  # and more: see ProfileChangeList
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    # Searching is profile_search_q's (get_search_results); these only show the search box.
    search_fields = ["email", "phone", "custom_id", "identifiers__value", "first_name", "last_name"]
    search_help_text = "An exact e-mail, phone, customId, uuid or clientId; or a first and/or last name (any case)."
    readonly_fields = ["client_id", "recognized", "identifiers_table", "created_at", "updated_at", "last_activity_date"]
    native_fieldsets = [
        ("Demographics", {"fields": [("first_name", "last_name"), "display_name", "sex", "birth_date", "avatar_url"]}),
        ("Address", {"fields": ["company", "address", "city", "province", "zip_code", "country_code"]}),
    ]

    # --- list -------------------------------------------------------------------------------

    def get_changelist(self, request, **kwargs):
        return ProfileChangeList

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        queryset = queryset.alias(_first=Lower("first_name"), _last=Lower("last_name"))
        return queryset.filter(profile_search_q(term)), False

    @admin.display(description="clientId", ordering="id")
    def client_id(self, obj):
        return obj.pk

    @admin.display(description="name", ordering="last_name")
    def name(self, obj):
        return " ".join(part for part in (obj.first_name, obj.last_name) if part)

    @admin.display(description="recognized", boolean=True)
    def recognized(self, obj):
        return not obj.anonymous

    # --- change form --------------------------------------------------------------------------

    def attribute_definitions(self, request) -> list[AttributeDefinition]:
        # get_fieldsets and get_form both need them; load them once per request.
        if not hasattr(request, "_attribute_definitions"):
            request._attribute_definitions = list(AttributeDefinition.objects.order_by("name"))
        return request._attribute_definitions

    def get_fieldsets(self, request, obj=None):
        definitions = self.attribute_definitions(request)
        if obj is None:
            head = [("Identifiers", {"fields": ["email", "phone", "custom_id", "uuid"]})]
        else:
            head = [("Identity", {"fields": ["client_id", "recognized", "identifiers_table"]})]
        attributes = {
            "fields": [attribute_field_name(d) for d in definitions],
            "description": "Empty means not set: clearing an input deletes the attribute. "
            "New attributes are defined under Attribute definitions.",
        }
        tail = [] if obj is None else [("Activity", {"fields": ["created_at", "updated_at", "last_activity_date"]})]
        return [*head, *self.native_fieldsets, ("Custom attributes", attributes), *tail]

    def get_form(self, request, obj=None, change=False, **kwargs):
        definitions = self.attribute_definitions(request)
        base = kwargs.pop("form", self.add_form if obj is None else self.form)
        fields = {attribute_field_name(d): attribute_formfield(d) for d in definitions}
        kwargs["form"] = type(base.__name__, (base,), {**fields, "definitions": definitions})
        return super().get_form(request, obj, change, **kwargs)

    @admin.display(description="identifiers")
    def identifiers_table(self, obj):
        main = {(kind, getattr(obj, column)) for kind, column in self.main_columns.items()}
        rows = (
            (
                i.get_kind_display(),
                i.value,
                "main" if (i.kind, i.value) in main else "",
                date_format(localtime(i.first_seen), "DATETIME_FORMAT"),
                date_format(localtime(i.last_seen), "DATETIME_FORMAT"),
            )
            for i in obj.identifiers.order_by("kind", "first_seen", "pk")
        )
        return format_html(
            "<table><thead><tr><th>kind</th><th>value</th><th></th><th>first seen</th><th>last seen</th></tr>"
            "</thead><tbody>{}</tbody></table>",
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows),
        )

    main_columns = {
        IdentifierKind.EMAIL: "email",
        IdentifierKind.PHONE: "phone",
        IdentifierKind.CUSTOM_ID: "custom_id",
        IdentifierKind.UUID: "uuid",
    }

    # --- delete -------------------------------------------------------------------------------

    def delete_model(self, request, obj):
        profile_delete(profile=obj, source=SOURCE, actor=request.user.get_username())

    def delete_queryset(self, request, queryset):
        for profile in queryset:
            profile_delete(profile=profile, source=SOURCE, actor=request.user.get_username())
