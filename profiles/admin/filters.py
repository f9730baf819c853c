"""The profiles list's filters. Each one compiles its choice through the one condition language (the same
trees segments and the API's filters use), once per request; none counts its choices where a count is a scan."""

from __future__ import annotations

import json

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.db.models import Count

from consents.models import Agreement
from crm.errors import DomainError
from profiles.conditions import condition_compile
from profiles.models import Tag
from profiles.models.profile import recognized_q
from segments.models import Segment


class RecognizedFilter(admin.SimpleListFilter):
    title = "identity"
    parameter_name = "recognized"

    def lookups(self, request, model_admin):
        return [("yes", "recognized"), ("no", "anonymous")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return _admin_filter(
                request, queryset, {"field": "anonymous", "op": "eq", "value": self.value() == "no"}, "recognized"
            )
        return queryset

    def get_facet_counts(self, pk_attname, filtered_qs):
        # Both counts in the one aggregate over the filtered list, instead of the default "pk IN (subquery)".
        return {
            "0__c": Count(pk_attname, filter=recognized_q()),
            "1__c": Count(pk_attname, filter=~recognized_q()),
        }


class NoFacetsMixin:
    """Filters whose choices show no counts: a count per tag or agreement state is a scan per choice."""

    def choices(self, changelist):
        # The filter sidebar lists each filter's choices at once (list()), so switching facets off around it is safe.
        add_facets, changelist.add_facets = changelist.add_facets, False
        try:
            yield from super().choices(changelist)
        finally:
            changelist.add_facets = add_facets


def tag_choices(request, limit: int = 100) -> list[tuple[int, str]]:
    """The first tags by name, for the tag filter and the bulk actions' suggestions: one query per request."""
    if not hasattr(request, "_profile_tag_choices"):
        request._profile_tag_choices = list(Tag.objects.order_by("name").values_list("pk", "name")[:limit])
    return request._profile_tag_choices


class TagFilter(NoFacetsMixin, admin.SimpleListFilter):
    title = "tag"
    parameter_name = "tag"

    def lookups(self, request, model_admin):
        return [(str(pk), name) for pk, name in tag_choices(request)]

    def queryset(self, request, queryset):
        if self.value() and self.value().isdigit():
            return _admin_filter(request, queryset, {"tagId": int(self.value())}, self.parameter_name)
        return queryset


class AgreementStateFilter(admin.ListFilter):
    """One select per agreement in one small form: ``?consent=<agreement key>:<state>``, once per agreement.

    ``none`` means the profile never decided on that agreement. Shows no counts (a count per state is a scan each).
    """

    title = "agreement state"
    parameter_name = "consent"
    template = "admin/profiles/profile/agreement_filter.html"

    def __init__(self, request, params, model, model_admin):
        super().__init__(request, params, model, model_admin)
        values = params.pop(self.parameter_name, [])
        self.chosen: dict[str, str] = {}
        for value in [values] if isinstance(values, str) else values:
            key, _, state = value.partition(":")
            if key and state:
                self.chosen[key] = state
        if self.chosen:
            self.used_parameters[self.parameter_name] = [f"{key}:{state}" for key, state in self.chosen.items()]
        # Filters are built again for the facet counts: read the agreements once per request.
        if not hasattr(request, "_profile_agreement_rows"):
            request._profile_agreement_rows = self.agreement_rows()
        self.agreements = request._profile_agreement_rows

    @staticmethod
    def agreement_rows() -> list[dict]:

        rows = []
        for key, title, double in Agreement.objects.filter(is_active=True).values_list(
            "key", "title", "requires_double_opt_in"
        ):
            states = ["granted", "denied", *(["awaiting_confirmation"] if double else []), "none"]
            labels = {"none": "never decided"}
            rows.append(
                {"key": key, "title": title, "states": [(s, labels.get(s, s.replace("_", " "))) for s in states]}
            )
        return rows

    def has_output(self):
        return bool(self.agreements)

    def expected_parameters(self):
        return [self.parameter_name]

    def queryset(self, request, queryset):
        states = {"awaiting_confirmation": "awaiting"}
        conditions = [{"agreement": key, "state": states.get(state, state)} for key, state in self.chosen.items()]
        return _admin_filter(request, queryset, {"all": conditions}, self.parameter_name) if conditions else queryset

    def choices(self, changelist):
        yield {
            "agreements": [
                {**row, "value": f"{row['key']}:{self.chosen[row['key']]}" if row["key"] in self.chosen else ""}
                for row in self.agreements
            ],
            "active": bool(self.chosen),
            **_form_filter_context(self, changelist),
        }


def _form_filter_context(list_filter, changelist) -> dict:
    """What a filter rendered as a small GET form needs: the other parameters to keep, and a link without it."""
    return {
        "remove_query_string": changelist.get_query_string(remove=[list_filter.parameter_name]),
        "keep": [
            (name, value)
            for name, values in changelist.get_filters_params().items()
            if name != list_filter.parameter_name
            for value in (values if isinstance(values, list) else [values])
        ],
        "query": changelist.query,
    }


class InputFilter(NoFacetsMixin, admin.SimpleListFilter):
    """A free-text filter (a small GET form) for values too many to list, such as cities."""

    template = "admin/profiles/profile/input_filter.html"

    def lookups(self, request, model_admin):
        return []

    def has_output(self):
        return True

    def choices(self, changelist):
        # The template needs the other parameters to keep them, and a link that drops this one.
        yield {
            "value": self.value() or "",
            "parameter_name": self.parameter_name,
            **_form_filter_context(self, changelist),
        }


class CityFilter(InputFilter):
    title = "city"
    parameter_name = "city"

    def queryset(self, request, queryset):
        if value := (self.value() or "").strip():
            # Compiles to lower(city) = lower(value): the expression index on Lower("city") serves it.
            return _admin_filter(request, queryset, {"field": "city", "op": "eq", "value": value}, self.parameter_name)
        return queryset


class SegmentListFilter(NoFacetsMixin, admin.SimpleListFilter):
    """The profiles of a segment, evaluated from its tree (the same answer as its count)."""

    title = "segment"
    parameter_name = "segment"

    def lookups(self, request, model_admin):

        # Filters are built again for the facet counts: read the segments once per request.
        if not hasattr(request, "_profile_segment_choices"):
            request._profile_segment_choices = list(Segment.objects.order_by("name").values_list("pk", "name")[:200])
        return [(str(pk), name) for pk, name in request._profile_segment_choices]

    def queryset(self, request, queryset):
        if self.value() and self.value().isdigit():
            return _admin_filter(request, queryset, {"segment": int(self.value())}, self.parameter_name)
        return queryset


def _admin_filter(request, queryset, tree: dict, parameter: str):
    """A list filter through the one filter language, compiled once per request (the filters run again for the
    facet counts); a condition that no longer holds (a deleted tag or segment) is the admin's "invalid filter"
    answer (a redirect with ?e=1), not a 500."""
    cache = request.__dict__.setdefault("_profile_filter_q", {})
    key = json.dumps(tree, sort_keys=True)
    if key not in cache:
        try:
            cache[key] = condition_compile(tree, path=parameter)
        except DomainError as exc:
            raise IncorrectLookupParameters(exc.message) from None
    return queryset.filter(cache[key])


class DateRangeFilter(NoFacetsMixin, admin.DateFieldListFilter):
    pass
