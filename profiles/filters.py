"""The list's query parameters, as a thin django-filter front over the one filter language.

Each parameter becomes a node of a condition tree (``profiles.conditions``) and the compiler turns the tree into
the ``Q`` the list runs: the API lists (``/v4/clients``, ``/crm/v1/list``), the admin's list filters, segments,
counts and exports all ask the same compiler, so a filter means the same everywhere.
"""

from __future__ import annotations

import re

import django_filters
from django import forms
from django.db.models import QuerySet

from crm.errors import ValidationFailed
from profiles.conditions import OPS, ConditionError, condition_compile
from profiles.models import Profile

CONDITION_OPERATORS = ("eq", "not", "gt", "gte", "lt", "lte", "contains", "exists")
_CONDITION_RE = re.compile(r"^(?P<name>[^:]+):(?P<op>[a-zA-Z]+)(?::(?P<value>.*))?$", re.S)


def condition_filter(qs, tree: dict, *, field: str):
    """Narrow a Profile queryset by one condition; a bad one is a 400 naming the query parameter."""
    try:
        return qs.filter(condition_compile(tree, path=field))
    except ConditionError as exc:
        raise ValidationFailed(exc.message, field=field, code=exc.code) from None


class MultiValueField(forms.Field):
    widget = forms.MultipleHiddenInput

    def to_python(self, value):
        if not value:
            return []
        return [value] if isinstance(value, str) else list(value)


def attribute_condition_tree(condition: str) -> tuple[dict, str]:
    """``NAME:OP:VALUE`` → (the condition node, the field errors name: ``attributes.NAME``)."""
    match = _CONDITION_RE.match(condition)
    if not match or match["op"] not in CONDITION_OPERATORS:
        raise ValidationFailed(
            f"Attribute condition '{condition}' must be NAME:OP:VALUE with OP one of {', '.join(CONDITION_OPERATORS)}.",
            field="attribute",
        )
    name, op, raw = match["name"], match["op"], match["value"]
    field = f"attributes.{name}"
    if op == "exists":
        return {"attribute": name, "op": "exists", "value": (raw or "true").lower() != "false"}, field
    if raw is None or raw == "":
        raise ValidationFailed(f"Attribute condition '{condition}' needs a value.", field=field)
    return {"attribute": name, "op": op, "value": raw}, field


class AttributeConditionFilter(django_filters.Filter):
    """``attribute=NAME:OP:VALUE`` (repeatable): eq, not, gt, gte, lt, lte, contains, exists[:false]."""

    field_class = MultiValueField

    def filter(self, qs, value):
        for condition in value or []:
            tree, field = attribute_condition_tree(condition)
            qs = condition_filter(qs, tree, field=field)
        return qs


class TagsFilter(django_filters.Filter):
    """``tags=vip`` (repeatable, or comma-separated): profiles that have every named tag (case-insensitive)."""

    field_class = MultiValueField

    def filter(self, qs, value):
        names = [name.strip() for item in value or [] for name in item.split(",") if name.strip()]
        if not names:
            return qs
        return condition_filter(qs, {"all": [{"tag": name} for name in names]}, field="tags")


class NativeFilter(django_filters.CharFilter):
    """One native field or identifier under one op (identifiers normalised as writes are; text case-insensitive)."""

    def __init__(self, *args, api_field: str, op: str = "eq", **kwargs):
        self.api_field = api_field
        self.op = op
        super().__init__(*args, **kwargs)

    def filter(self, qs, value):
        if value in (None, ""):
            return qs
        return condition_filter(qs, {"field": self.api_field, "op": self.op, "value": value}, field=self.field_name)


class DateFilter(django_filters.IsoDateTimeFilter):
    def __init__(self, *args, api_field: str, op: str, **kwargs):
        self.api_field = api_field
        self.op = op
        super().__init__(*args, **kwargs)

    def filter(self, qs, value):
        if value is None:
            return qs
        return condition_filter(
            qs, {"field": self.api_field, "op": self.op, "value": value.isoformat()}, field=self.field_name
        )


class SegmentFilter(django_filters.NumberFilter):
    """``segment=ID``: the profiles the segment's tree selects (exact at once, not its membership rows)."""

    def filter(self, qs, value):
        if value is None:
            return qs
        if value != int(value) or value < 1:
            raise ValidationFailed("segment takes a segment id.", field="segment")
        return condition_filter(qs, {"segment": int(value)}, field="segment")


def _native(name: str, op: str = "eq") -> NativeFilter:
    return NativeFilter(api_field=name, op=op, field_name=name)


class ProfileFilterSet(django_filters.FilterSet):
    email = _native("email")
    phone = _native("phone")
    customId = _native("customId")
    uuid = _native("uuid")
    firstName = _native("firstName")
    lastName = _native("lastName")
    displayName = _native("displayName", "contains")
    city = _native("city")
    countryCode = _native("countryCode")
    sex = _native("sex")
    anonymous = django_filters.ChoiceFilter(choices=[("true", "true"), ("false", "false")], method="filter_anonymous")
    createdFrom = DateFilter(api_field="createdAt", op="gte", field_name="createdFrom")
    createdTo = DateFilter(api_field="createdAt", op="lt", field_name="createdTo")
    updatedFrom = DateFilter(api_field="updatedAt", op="gte", field_name="updatedFrom")
    updatedTo = DateFilter(api_field="updatedAt", op="lt", field_name="updatedTo")
    lastActivityFrom = DateFilter(api_field="lastActivityDate", op="gte", field_name="lastActivityFrom")
    lastActivityTo = DateFilter(api_field="lastActivityDate", op="lt", field_name="lastActivityTo")
    attribute = AttributeConditionFilter()
    tags = TagsFilter()
    segment = SegmentFilter(field_name="segment")

    class Meta:
        model = Profile
        fields: list[str] = []

    def filter_anonymous(self, qs, name, value):
        if not value:
            return qs
        return condition_filter(qs, {"field": "anonymous", "op": "eq", "value": value == "true"}, field="anonymous")


def profiles_filter(params) -> QuerySet:
    """The profiles the list's filters (a QueryDict of filter names) select: the one way in for lists and exports.
    A filter the request gets wrong is a ValidationFailed naming it."""
    filterset = ProfileFilterSet(params, queryset=Profile.objects.all())
    if not filterset.is_valid():
        field, errors = next(iter(filterset.errors.items()))
        raise ValidationFailed(f"{field}: {' '.join(errors)}", field=field)
    return filterset.qs


__all__ = ["OPS", "ProfileFilterSet", "attribute_condition_tree", "condition_filter", "profiles_filter"]
