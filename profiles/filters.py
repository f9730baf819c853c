"""The one filter language for profiles (lists, the admin, later segments and exports): django-filter."""

from __future__ import annotations

import re

import django_filters
from django import forms
from django.db.models import Exists, JSONField, OuterRef, Q, QuerySet, Value
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Lower
from django.db.models.lookups import GreaterThan, GreaterThanOrEqual, IContains, LessThan, LessThanOrEqual

from crm.errors import ValidationFailed
from profiles.models import AttributeDefinition, AttributeType, Profile, ProfileTag, Tag
from profiles.models.profile import recognized_q
from profiles.normalize import identifier_normalize

CONDITION_OPERATORS = ("eq", "not", "gt", "gte", "lt", "lte", "contains", "exists")
COMPARISONS = {"gt": GreaterThan, "gte": GreaterThanOrEqual, "lt": LessThan, "lte": LessThanOrEqual}
_CONDITION_RE = re.compile(r"^(?P<name>[^:]+):(?P<op>[a-z]+)(?::(?P<value>.*))?$", re.S)


class MultiValueField(forms.Field):
    widget = forms.MultipleHiddenInput

    def to_python(self, value):
        if not value:
            return []
        return [value] if isinstance(value, str) else list(value)


class AttributeConditionFilter(django_filters.Filter):
    """``attribute=NAME:OP:VALUE`` (repeatable): eq, not, gt, gte, lt, lte, contains, exists[:false]."""

    field_class = MultiValueField

    def filter(self, qs, value):
        for condition in value or []:
            qs = qs.filter(attribute_condition_q(condition))
        return qs


def _typed(definition: AttributeDefinition, raw: str):
    if definition.type == AttributeType.NUMBER:
        try:
            number = float(raw)
        except ValueError:
            raise ValidationFailed(
                f"Attribute '{definition.name}' is a number; '{raw}' is not.", field=f"attributes.{definition.name}"
            ) from None
        return int(number) if number.is_integer() else number
    if definition.type == AttributeType.BOOLEAN:
        if raw.lower() not in {"true", "false"}:
            raise ValidationFailed(
                f"Attribute '{definition.name}' is true or false; '{raw}' is neither.",
                field=f"attributes.{definition.name}",
            )
        return raw.lower() == "true"
    return raw


def attribute_condition_q(condition: str) -> Q:
    match = _CONDITION_RE.match(condition)
    if not match or match["op"] not in CONDITION_OPERATORS:
        raise ValidationFailed(
            f"Attribute condition '{condition}' must be NAME:OP:VALUE with OP one of {', '.join(CONDITION_OPERATORS)}.",
            field="attribute",
        )
    name, op, raw = match["name"], match["op"], match["value"]
    definition = AttributeDefinition.objects.filter(name=name).first()
    if definition is None:
        raise ValidationFailed(f"Unknown attribute '{name}'.", field=f"attributes.{name}")
    if op == "exists":
        present = Q(attributes__has_key=name)
        return ~present if (raw or "true").lower() == "false" else present
    if raw is None or raw == "":
        raise ValidationFailed(f"Attribute condition '{condition}' needs a value.", field=f"attributes.{name}")
    if op == "contains":
        if definition.type == AttributeType.LIST:
            return Q(attributes__contains={name: [_typed_item(raw)]})
        return Q(IContains(KeyTextTransform(name, "attributes"), raw))
    value = _typed(definition, raw)
    if op == "eq":
        return Q(attributes__contains={name: value})
    if op == "not":
        return ~Q(attributes__contains={name: value})
    if definition.type not in (AttributeType.NUMBER, AttributeType.DATE, AttributeType.DATETIME):
        raise ValidationFailed(
            f"Attribute '{name}' is a {definition.type}; {op} needs a number or a date.", field=f"attributes.{name}"
        )
    return Q(COMPARISONS[op](KeyTransform(name, "attributes"), Value(value, output_field=JSONField())))


def _typed_item(raw: str):
    try:
        number = float(raw)
    except ValueError:
        return raw
    return int(number) if number.is_integer() else number


class TagsFilter(django_filters.Filter):
    """``tags=vip`` (repeatable, or comma-separated): profiles that have every named tag (case-insensitive)."""

    field_class = MultiValueField

    def filter(self, qs, value):
        names = [name.strip() for item in value or [] for name in item.split(",") if name.strip()]
        if not names:
            return qs
        found = dict(
            Tag.objects.annotate(key=Lower("name")).filter(key__in={n.lower() for n in names}).values_list("key", "pk")
        )
        for name in names:
            tag_id = found.get(name.lower())
            if tag_id is None:
                raise ValidationFailed(f"Unknown tag '{name}'.", field="tags", code="tag.not_found")
            qs = qs.filter(Exists(ProfileTag.objects.filter(profile=OuterRef("pk"), tag_id=tag_id)))
        return qs


class IdentifierFilter(django_filters.CharFilter):
    """Exact match on any identifier the profile owns, normalised as writes are."""

    def __init__(self, *args, kind: str, **kwargs):
        self.kind = kind
        super().__init__(*args, **kwargs)

    def filter(self, qs, value):
        if not value:
            return qs
        normalized = identifier_normalize(self.kind, value)
        return qs.filter(identifiers__kind=self.kind, identifiers__value=normalized)


class ProfileFilterSet(django_filters.FilterSet):
    email = IdentifierFilter(kind="email")
    phone = IdentifierFilter(kind="phone")
    customId = IdentifierFilter(kind="customId")
    uuid = IdentifierFilter(kind="uuid")
    firstName = django_filters.CharFilter(field_name="first_name", lookup_expr="iexact")
    lastName = django_filters.CharFilter(field_name="last_name", lookup_expr="iexact")
    displayName = django_filters.CharFilter(field_name="display_name", lookup_expr="icontains")
    city = django_filters.CharFilter(field_name="city", lookup_expr="iexact")
    countryCode = django_filters.CharFilter(field_name="country_code", lookup_expr="iexact")
    sex = django_filters.CharFilter(field_name="sex")
    anonymous = django_filters.ChoiceFilter(choices=[("true", "true"), ("false", "false")], method="filter_anonymous")
    createdFrom = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    createdTo = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    updatedFrom = django_filters.IsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")
    updatedTo = django_filters.IsoDateTimeFilter(field_name="updated_at", lookup_expr="lt")
    lastActivityFrom = django_filters.IsoDateTimeFilter(field_name="last_activity_date", lookup_expr="gte")
    lastActivityTo = django_filters.IsoDateTimeFilter(field_name="last_activity_date", lookup_expr="lt")
    attribute = AttributeConditionFilter()
    tags = TagsFilter()

    class Meta:
        model = Profile
        fields: list[str] = []

    def filter_anonymous(self, qs, name, value):
        if not value:
            return qs
        return qs.exclude(recognized_q()) if value == "true" else qs.filter(recognized_q())


def profiles_filter(params) -> QuerySet:
    """The profiles the list's filters (a QueryDict of filter names) select: the one way in for lists and exports.
    A filter the request gets wrong is a ValidationFailed naming it."""
    filterset = ProfileFilterSet(params, queryset=Profile.objects.all())
    if not filterset.is_valid():
        field, errors = next(iter(filterset.errors.items()))
        raise ValidationFailed(f"{field}: {' '.join(errors)}", field=field)
    return filterset.qs
