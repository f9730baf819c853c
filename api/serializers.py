"""Building blocks of the surfaces' request serializers: strict fields (no silent coercion of numbers to
text or of "yes" to true), objects that refuse keys they do not define, and errors that keep a stable code.

A request serializer both validates and documents (drf-spectacular reads the same class); its errors reach
the surface's error renderer through ``api.base.describe``, which names the first failing field as a path
(``attributes``, ``[3].firstName``) and keeps its code.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail, ValidationError

# DRF's built-in codes → ours (anything else, e.g. "field.read_only", passes through).
CODES = {
    "required": "field.required",
    "null": "field.null",
    "invalid": "field.type",
    "not_a_list": "field.type",
    "not_a_dict": "field.type",
    "max_length": "field.too_long",
    "invalid_choice": "field.choice",
    "empty": "field.empty",
    "max_value": "field.range",
    "min_value": "field.range",
    "max_string_length": "field.range",
}


def stable_code(code: str | None) -> str:
    return CODES.get(code or "", code or "validation_failed")


class Text(serializers.CharField):
    """A JSON string, kept as sent (no trimming: the services normalise); a number or a boolean is refused."""

    default_error_messages = {
        "invalid": "must be a string.",
        "blank": "must not be empty.",
        "max_length": "is longer than {max_length} characters.",
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        kwargs.setdefault("allow_blank", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


@extend_schema_field({"oneOf": [{"type": "string"}, {"type": "integer"}]})
class TextOrInteger(serializers.Field):
    """A string, or a whole number taken as its decimal text (Synerise's customId)."""

    default_error_messages = {"invalid": "must be a string or a whole number."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, str | int):
            self.fail("invalid")
        return data

    def to_representation(self, value):
        return value


class StrictInteger(serializers.IntegerField):
    """A JSON whole number (not "12", not true)."""

    default_error_messages = {"invalid": "must be an integer."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


@extend_schema_field({"oneOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}], "nullable": True})
class Scalar(serializers.Field):
    """A string, number, boolean or null (no object, no list)."""

    default_error_messages = {"invalid": "must be a string, a number, a boolean or null."}

    def __init__(self, **kwargs):
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, dict | list):
            self.fail("invalid")
        return data

    def to_representation(self, value):
        return value


class CaseInsensitiveChoice(serializers.ChoiceField):
    """One of ``choices`` (a mapping of the names as documented → values), in any letter case."""

    default_error_messages = {"invalid_choice": "must be one of {shown}; got {input!r}."}

    def __init__(self, mapping: dict[str, object], **kwargs):
        self.mapping = {name.lower(): value for name, value in mapping.items()}
        self.shown = ", ".join(mapping)
        super().__init__(choices=list(mapping), **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str) or data.lower() not in self.mapping:
            self.fail("invalid_choice", shown=self.shown, input=data)
        return self.mapping[data.lower()]


class StrictBoolean(serializers.BooleanField):
    """``true`` or ``false`` only (DRF's BooleanField also takes "yes", 1, "on" …)."""

    default_error_messages = {"invalid": "must be true or false."}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class AnyObject(serializers.DictField):
    """A JSON object with values of any type."""

    default_error_messages = {"not_a_dict": "must be an object."}


class StrictSerializer(serializers.Serializer):
    """A JSON object with only the keys the serializer defines: an unknown key is an error naming it
    (``read_only_keys``: known from the documents the API returns, and refused as read-only)."""

    read_only_keys: frozenset[str] = frozenset()
    # Keys taken as "not sent": the answer documents' own fields a client may send back.
    ignored_keys: frozenset[str] = frozenset()
    default_error_messages = {"invalid": "must be an object."}

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise ValidationError(
                {"non_field_errors": [ErrorDetail(self.error_messages["invalid"], code="field.type")]}
            )
        if self.ignored_keys:
            data = {key: value for key, value in data.items() if key not in self.ignored_keys}
        extra = [key for key in data if key not in self.fields]
        if extra:
            key = extra[0]
            if key in self.read_only_keys:
                raise ValidationError({key: [ErrorDetail(f"{key} is read-only.", code="field.read_only")]})
            raise ValidationError({key: [ErrorDetail(f"Unknown field '{key}'.", code="field.unknown")]})
        return super().to_internal_value(data)


def first_error(detail, codes, prefix: str = "") -> tuple[str | None, str, str]:
    """(field path, message, code) of the first error in a DRF ``ValidationError``'s detail."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            sub_codes = codes.get(key) if isinstance(codes, dict) else codes
            if key == "non_field_errors":
                path = prefix or "body"
            elif isinstance(key, int):
                path = f"{prefix}[{key}]"
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            return first_error(value, sub_codes, path)
    if isinstance(detail, list) and detail:
        sub_codes = codes[0] if isinstance(codes, list) and codes else codes
        if isinstance(detail[0], dict | list):
            # A list of nested errors (many=True): the index of the first failing item names it.
            for index, item in enumerate(detail):
                if item:
                    item_codes = codes[index] if isinstance(codes, list) and index < len(codes) else codes
                    return first_error(item, item_codes, f"{prefix}[{index}]")
        return first_error(detail[0], sub_codes, prefix)
    code = codes if isinstance(codes, str) else getattr(detail, "code", None)
    return (prefix or None), _message(prefix, str(detail)), stable_code(code)


def _message(path: str, message: str) -> str:
    """Field errors written as predicates ("must be a string.") get the field's name in front."""
    if path and message.startswith(("must ", "is ")):
        name = path.rsplit(".", 1)[-1]
        return f"{name} {message}"
    return message


def all_errors(detail, codes, prefix: str = "") -> list[tuple[str, str, str]]:
    """Every error of a DRF ``ValidationError``'s detail as (field path, message, code), in order."""
    found: list[tuple[str, str, str]] = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            sub_codes = codes.get(key) if isinstance(codes, dict) else codes
            if key == "non_field_errors":
                path = prefix or "body"
            elif isinstance(key, int):
                path = f"{prefix}[{key}]"
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            found.extend(all_errors(value, sub_codes, path))
    elif isinstance(detail, list):
        if detail and isinstance(detail[0], dict | list):
            for index, item in enumerate(detail):
                item_codes = codes[index] if isinstance(codes, list) and index < len(codes) else codes
                found.extend(all_errors(item, item_codes, f"{prefix}[{index}]"))
        else:
            for index, item in enumerate(detail):
                item_codes = codes[index] if isinstance(codes, list) and index < len(codes) else codes
                found.extend(all_errors(item, item_codes, prefix))
    else:
        code = codes if isinstance(codes, str) else getattr(detail, "code", None)
        found.append((prefix, _message(prefix, str(detail)), stable_code(code)))
    return found


class PerItemList(serializers.ListField):
    """A list whose items are validated one by one, for surfaces that report errors per item: each item becomes
    its validated data or the ``ValidationError`` it raised. Only the list's own shape (not a list, empty, too
    long) fails the whole request. ``max_items`` may be a function, to read a setting per request."""

    default_error_messages = {
        "not_a_list": "must be a list.",
        "empty": "must hold at least one item.",
        "too_many": "holds {count} items; at most {limit} are accepted at once.",
    }

    def __init__(self, *, max_items=None, **kwargs):
        self.max_items = max_items
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, list):
            self.fail("not_a_list")
        if not data and not self.allow_empty:
            self.fail("empty")
        limit = self.max_items() if callable(self.max_items) else self.max_items
        if limit is not None and len(data) > limit:
            raise ValidationError(
                ErrorDetail(self.error_messages["too_many"].format(count=len(data), limit=limit), code="batch.too_many")
            )
        outcomes = []
        for item in data:
            try:
                outcomes.append(self.child.run_validation(item))
            except ValidationError as exc:
                outcomes.append(exc)
        return outcomes
