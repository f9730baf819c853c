"""The API's JSON parser: strict where the standard one lets bad input through to a 500.

Refused with a 400 naming the place: bodies that are not UTF-8, duplicate keys in an object (the
standard parser keeps the last one), ``NaN``/``Infinity`` (not JSON, and PostgreSQL's jsonb refuses
them), nesting deeper than ``API_MAX_JSON_DEPTH``, and strings holding a NUL character or a lone
surrogate (PostgreSQL stores neither). A view whose surface reports errors per item sets
``per_item_text_check = True`` and checks each item with ``text_problem`` itself, so one bad item
does not sink the others.
"""

from __future__ import annotations

import json
import re

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from crm.errors import ValidationFailed

# Where a NUL or a surrogate can hide in valid JSON text: only as a \\u escape (raw ones are not valid).
_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89abcdefABCDEF])")


class DuplicateKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return result


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def bad_text(value: str) -> str | None:
    """Why a string cannot be stored (NUL, lone surrogate), or None."""
    if "\x00" in value:
        return "contains a NUL character (\\u0000)"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (not valid Unicode)"
    return None


def text_problem(data, prefix: str = "") -> tuple[str, str] | None:
    """(path, reason) of the first string (or object key) in ``data`` that cannot be stored, else None."""
    stack = [(prefix, data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            if (reason := bad_text(value)) is not None:
                return path or "body", reason
        elif isinstance(value, dict):
            for key, item in value.items():
                where = f"{path}.{key}" if path else str(key)
                if (reason := bad_text(key)) is not None:
                    return (path or "body"), f"has a key that {reason}"
                stack.append((where, item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item) for i, item in enumerate(value))
    return None


def _depth_exceeds(data, limit: int) -> bool:
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > limit:
                return True
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


class StrictJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError(f"The body is not UTF-8 (byte {exc.start}).") from None
        try:
            data = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
        except DuplicateKey as exc:
            raise ValidationFailed(
                f"The key '{exc.key}' appears twice in one object; send it once.",
                field=exc.key,
                code="body.duplicate_key",
            ) from None
        except RecursionError:
            data = None  # nested beyond what Python parses: certainly beyond the limit
        except ValueError as exc:
            raise ParseError(str(exc)) from None
        limit = settings.API_MAX_JSON_DEPTH
        if (data is None and text.strip() != "null") or _depth_exceeds(data, limit):
            raise ValidationFailed(
                f"The body is nested deeper than {limit} levels.", field="body", code="body.too_deep"
            )
        view = (parser_context or {}).get("view")
        if _SUSPECT_ESCAPE.search(text) and not getattr(view, "per_item_text_check", False):
            text_check(data)
        return data


def text_check(data, prefix: str = "") -> None:
    """Raise ValidationFailed naming the first string in ``data`` that cannot be stored (for per-item checks)."""
    if problem := text_problem(data, prefix):
        raise ValidationFailed(f"{problem[0]} {problem[1]}.", field=problem[0], code="field.invalid_text")
