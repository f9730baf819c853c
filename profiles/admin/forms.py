"""Profile forms: native fields and one typed input per custom attribute, written through the services."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, date, datetime

from django import forms
from django.conf import settings
from django.contrib.admin import widgets
from django.core.exceptions import ValidationError
from django.forms import BoundField
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from crm.admin import ServiceModelForm
from profiles.fields import EDITABLE_API_NAMES as NATIVE_FIELDS
from profiles.fields import IDENTIFIER_COLUMNS
from profiles.models import AttributeDefinition, AttributeType, Profile
from profiles.services import ProfileInput, profile_update, profile_upsert

SOURCE = "admin"
# Identifier column → kind, for the add form's identifier inputs.
IDENTIFIER_FIELDS = {column: kind for kind, column in IDENTIFIER_COLUMNS.items()}
_NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


class NumberField(forms.CharField):
    """A JSON number: an int when written without a fraction or exponent, else a float."""

    default_error_messages = {"invalid": "Enter a number."}

    def __init__(self, **kwargs):
        super().__init__(empty_value=None, **kwargs)

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return None
        if not _NUMBER_RE.match(value):
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        number = int(value) if re.fullmatch(r"[+-]?\d+", value) else float(value)
        if isinstance(number, float) and not math.isfinite(number):
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return number


class ListField(forms.JSONField):
    default_error_messages = {"not_a_list": 'Enter a JSON array, e.g. ["gold", 2, true].'}

    def to_python(self, value):
        value = super().to_python(value)
        if value is not None and not isinstance(value, list):
            raise ValidationError(self.error_messages["not_a_list"], code="not_a_list")
        return value

    def prepare_value(self, value):
        # Not set is an empty box, not the JSON text "null".
        return "" if value is None else super().prepare_value(value)


class UnsetBooleanSelect(forms.NullBooleanSelect):
    def __init__(self, attrs=None):
        super().__init__(attrs)
        self.choices = [("unknown", "— not set —"), ("true", "true"), ("false", "false")]


def attribute_field_name(definition: AttributeDefinition) -> str:
    # Attribute names may hold any character; form field names stay plain.
    return f"attr_{definition.pk}"


def attribute_formfield(definition: AttributeDefinition) -> forms.Field:
    """The input that fits an attribute's type; empty means "not set" (deletes the attribute)."""
    help_text = definition.type + (f" · {definition.description}" if definition.description else "")
    common = {"required": False, "label": definition.name, "help_text": help_text}
    match definition.type:
        case AttributeType.NUMBER:
            return NumberField(widget=widgets.AdminTextInputWidget, **common)
        case AttributeType.BOOLEAN:
            return forms.NullBooleanField(widget=UnsetBooleanSelect, **common)
        case AttributeType.DATE:
            return forms.DateField(widget=widgets.AdminDateWidget, **common)
        case AttributeType.DATETIME:
            return forms.SplitDateTimeField(widget=widgets.AdminSplitDateTime, **common)
        case AttributeType.LIST:
            return ListField(widget=forms.Textarea(attrs={"rows": 2, "cols": 60}), **common)
        case _:
            return forms.CharField(
                max_length=settings.ATTRIBUTE_MAX_STRING_LENGTH,
                empty_value=None,
                widget=widgets.AdminTextInputWidget,
                **common,
            )


def attribute_initial(type_: str, value):
    """A stored attribute value as its input's initial value."""
    try:
        if type_ == AttributeType.DATE and isinstance(value, str):
            return date.fromisoformat(value)
        if type_ == AttributeType.DATETIME and isinstance(value, str):
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            # The inputs show whole seconds; without this an untouched value would look changed.
            return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).replace(microsecond=0)
    except ValueError:
        pass
    return value


def attribute_display(value) -> str:
    """A stored value as read-only text: lists and booleans as JSON writes them, nothing for not set."""
    if value is None:
        return ""
    if isinstance(value, bool | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def attribute_value(value):
    """A cleaned input as the value the service expects (JSON types; dates as ISO strings)."""
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


class TemplatelessHiddenBoundField(BoundField):
    """Renders a plain hidden input (the hidden initial value each card field carries) without a template.

    The markup is the same as Django's ``input.html`` (a test compares them); rendering ~25 of them through the
    template engine was a noticeable part of the card's time (B10). Any other widget renders as usual.
    """

    def as_widget(self, widget=None, attrs=None, only_initial=False):
        if type(widget) is not forms.HiddenInput or self.field.localize:
            return super().as_widget(widget, attrs, only_initial)
        attrs = self.build_widget_attrs(attrs or {}, widget)
        if self.auto_id and "id" not in widget.attrs:
            attrs.setdefault("id", self.html_initial_id if only_initial else self.auto_id)
        if only_initial and self.html_initial_name in self.form.data:
            value = self.form._widget_data_value(self.field.hidden_widget(), self.html_initial_name)
        else:
            value = self.value()
        name = self.html_initial_name if only_initial else self.html_name
        value = widget.format_value(value)
        parts = [format_html('<input type="hidden" name="{}"', name)]
        if value is not None:
            parts.append(format_html(' value="{}"', str(value)))
        for key, item in widget.build_attrs(widget.attrs, attrs).items():
            if item is True:
                parts.append(format_html(" {}", key))
            elif item is not False:
                parts.append(format_html(' {}="{}"', key, str(item)))
        parts.append(mark_safe(">"))
        return mark_safe("".join(parts))  # noqa: S308 (each part escaped by format_html)


class ProfileForm(ServiceModelForm):
    """Native fields and custom attributes of one profile; only what changed is sent to ``profile_update``."""

    bound_field_class = TemplatelessHiddenBoundField

    # Filled per request by ProfileAdmin.get_form, which also declares one field per definition.
    definitions: list[AttributeDefinition] = []
    error_fields = {api_name: name for name, api_name in {**NATIVE_FIELDS, **IDENTIFIER_FIELDS}.items()}

    class Meta:
        model = Profile
        fields = list(NATIVE_FIELDS)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            # "Changed" then means changed from what the page showed, not from the row at POST time,
            # so a value the API wrote meanwhile is not overwritten by an input nobody touched.
            field.show_hidden_initial = True
        stored = self.instance.attributes or {}
        for definition in self.definitions:
            name = attribute_field_name(definition)
            if name in self.fields and stored.get(definition.name) is not None:
                self.initial.setdefault(name, attribute_initial(definition.type, stored[definition.name]))

    def attribute_rows(self) -> dict[str, list[dict]]:
        """The card's custom attributes: ``set`` (a stored value, or one typed in a post being shown again), each with
        its bound input, and ``unset`` (the rest, behind "Add an attribute"), by name."""
        stored = self.instance.attributes or {}
        errors = self._errors or {}  # as validated already: reading self.errors would validate (and write)
        changed = set(self.changed_data) if self.is_bound else set()
        rows: dict[str, list[dict]] = {"set": [], "unset": []}
        for definition in self.definitions:
            name = attribute_field_name(definition)
            value = stored.get(definition.name)
            row = {
                "name": definition.name,
                "type": definition.type,
                "description": definition.description,
                "field_name": name,
                "editable": name in self.fields,
                "field": self[name] if name in self.fields else None,
                "value": value,
                "display": attribute_display(value),
            }
            shown = value is not None or name in errors or name in changed
            rows["set" if shown else "unset"].append(row)
        return rows

    def error_field(self, name):
        if name and name.startswith("attributes."):
            attribute = name.removeprefix("attributes.")
            name = next((attribute_field_name(d) for d in self.definitions if d.name == attribute), None)
        return super().error_field(name)

    def profile_input(self) -> ProfileInput:
        changed = set(self.changed_data)
        return ProfileInput(
            identifiers={
                api_name: self.cleaned_data[name]
                for name, api_name in IDENTIFIER_FIELDS.items()
                if name in changed and self.cleaned_data[name] is not None
            },
            fields={name: self.cleaned_data[name] for name in NATIVE_FIELDS if name in changed},
            attributes={
                d.name: attribute_value(self.cleaned_data[attribute_field_name(d)])
                for d in self.definitions
                if attribute_field_name(d) in changed
            },
        )

    def call_service(self):
        data = self.profile_input()
        if not (data.identifiers or data.fields or data.attributes):
            return self.instance
        return profile_update(profile=self.instance, data=data, source=SOURCE, actor=self.actor).profile


class ProfileAddForm(ProfileForm):
    """A new profile: identifiers plus the change form's fields, through ``profile_upsert``."""

    email = forms.CharField(label="e-mail", required=False, empty_value=None, widget=widgets.AdminEmailInputWidget)
    phone = forms.CharField(required=False, empty_value=None, widget=widgets.AdminTextInputWidget)
    custom_id = forms.CharField(label="customId", required=False, empty_value=None, widget=widgets.AdminTextInputWidget)
    uuid = forms.CharField(
        required=False,
        empty_value=None,
        widget=widgets.AdminTextInputWidget,
        help_text="Generated when left empty.",
    )

    def call_service(self):
        result = profile_upsert(data=self.profile_input(), source=SOURCE, actor=self.actor)
        if not result.created:
            # Upsert updated someone else: undo it (we are inside the form's atomic block) and say who.
            raise ExistingProfile(result.profile)
        return result.profile

    def _post_clean(self):
        try:
            super()._post_clean()
        except ExistingProfile as exc:
            self.add_error(
                None,
                f"These identifiers already belong to profile {exc.profile.pk} ({exc.profile}); "
                "edit that profile instead.",
            )


class ExistingProfile(Exception):
    def __init__(self, profile: Profile):
        super().__init__(profile.pk)
        self.profile = profile
