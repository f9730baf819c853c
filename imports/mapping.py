"""The import mapping: which source column goes to which target, through which transformations.

```json
{"columns": {
   "E-mail":     {"to": "email"},
   "First name": {"to": "firstName", "transform": ["trim", "title"]},
   "Born":       {"to": "birthDate", "dateFormat": "%d.%m.%Y"},
   "Newsletter": {"to": "agreements.email", "map": {"Y": true, "N": false}},
   "Groups":     {"to": "tags", "split": ","},
   "Points":     {"to": "attributes.loyaltyPoints", "type": "number", "default": 0},
   "Old column": {"skip": true}},
 "constants": {"attributes.importSource": "crm-2026"},
 "consentTime": "Consent date",
 "record": "customer"}
```

Targets: the identifiers (email, phone, customId, uuid), every native field by its API name, ``attributes.NAME``,
``agreements.KEY`` and ``tags``. Per column, in this order: ``transform`` (trim, lower, upper, title, apostrophe),
``map`` (value → value; unmapped values pass), ``split`` (a separator: the value becomes a list, read the way a
spreadsheet writes a list in a cell: ``"Customer","VIP Club"`` gives ``Customer`` and ``VIP Club``, doubled quotes
are one quote, each item trimmed), ``type`` (string, number, integer, boolean, date, datetime, list: a JSON array
such as ``["a", "b"]``) or ``dateFormat`` (strptime), and ``default`` for an empty or missing value. ``constants``
set a target on every record. ``consentTime`` names the column holding when the person made the record's agreement
decisions (ISO 8601, or ``{"column": …, "dateFormat": …}``). For JSON, JSONL and XML, column names are dotted
paths (``contact.email``); XML elements' attributes are ``@name``. ``record`` names the XML element that holds one
profile, ``sheet`` the worksheet of an XLSX file (default: the first).

Values that are already typed (a spreadsheet's numbers, dates and booleans, JSON's numbers and booleans) keep their
type: a number mapped to a text target gives its digits (``48123456789``, never ``48123456789.0``), a date cell
gives a date, and a number where a date is expected is read as an Excel serial date (``45000`` is 2023-03-15).

``mapping_compile`` checks everything that can be checked before a run (unknown keys, targets and agreements,
transformations that cannot apply to their target, no identifier) and raises ``MappingInvalid`` naming the
offending part; ``Mapping.apply`` turns one record into a ``ProfileInput`` or raises ``RowInvalid``.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from consents.models import Agreement
from crm.errors import ValidationFailed
from profiles.fields import EDITABLE_BY_API_NAME, TEMPORAL_COLUMNS
from profiles.services import ProfileInput

IDENTIFIERS = ("email", "phone", "customId", "uuid")
# A leading apostrophe marks a cell as text in spreadsheets: CSV exports put one before a value that starts like a
# formula (ours and most others) or with a digit that must keep its leading zeros (Shopify's postcodes and ids).
_APOSTROPHE = re.compile(r"^'(?=[=+\-@\t\r0-9])")


def _apostrophe(text: str) -> str:
    return _APOSTROPHE.sub("", text, count=1)


TRANSFORMS: dict[str, Callable[[str], str]] = {
    "trim": str.strip,
    "lower": str.lower,
    "upper": str.upper,
    "title": str.title,
    "apostrophe": _apostrophe,
}
TYPES = ("string", "number", "integer", "boolean", "date", "datetime", "list")
COLUMN_KEYS = {"to", "transform", "map", "split", "type", "dateFormat", "default", "skip"}
MAPPING_KEYS = {"columns", "constants", "consentTime", "record", "sheet"}
# Excel's serial dates count days from 1899-12-30 (the 1900 date system, with its phantom 29 February 1900 before
# serial 61); the largest is 9999-12-31.
_EXCEL_EPOCH = datetime(1899, 12, 30)
_EXCEL_MAX_SERIAL = 2958466
TRUE = {"true", "t", "yes", "y", "1", "tak"}
FALSE = {"false", "f", "no", "n", "0", "nie"}
_DIRECTIVE = re.compile(r"%[a-zA-Z]")


class MappingInvalid(ValidationFailed):
    """The mapping cannot be used; nothing was read or written."""

    code = "import.mapping"


class RowInvalid(Exception):
    def __init__(self, message: str, *, field: str = "", code: str = "import.value"):
        super().__init__(message)
        self.message, self.field, self.code = message, field, code


def _fail(message: str, where: str) -> MappingInvalid:
    return MappingInvalid(message, field=where, code="import.mapping")


@dataclass
class Target:
    kind: str  # identifier, field, attribute, agreement, tags
    name: str  # identifier kind, column, attribute name, agreement key
    text: str  # as written in the mapping

    @property
    def is_date(self) -> bool:
        return self.kind == "field" and TEMPORAL_COLUMNS.get(self.name) == "DateField"


def target_parse(text: Any, where: str, agreements: set[str]) -> Target:
    if not isinstance(text, str) or not text:
        raise _fail("needs a target in 'to'.", where)
    if text in IDENTIFIERS:
        return Target("identifier", text, text)
    if text in EDITABLE_BY_API_NAME:
        return Target("field", EDITABLE_BY_API_NAME[text], text)
    if text == "tags":
        return Target("tags", "tags", text)
    if text.startswith("attributes.") and len(text) > len("attributes."):
        return Target("attribute", text.removeprefix("attributes."), text)
    if text.startswith("agreements."):
        key = text.removeprefix("agreements.")
        if key not in agreements:
            known = ", ".join(sorted(agreements)) or "none"
            raise _fail(f"Unknown agreement '{key}' (active agreements: {known}).", where)
        return Target("agreement", key, text)
    raise _fail(
        f"Unknown target '{text}': use {', '.join(IDENTIFIERS)}, a native field ({', '.join(EDITABLE_BY_API_NAME)}), "
        "attributes.NAME, agreements.KEY or tags.",
        where,
    )


def _date_format_check(fmt: Any, where: str) -> str:
    if not isinstance(fmt, str) or not _DIRECTIVE.search(fmt):
        raise _fail(f"dateFormat must be a strptime format such as %d.%m.%Y; got {fmt!r}.", where)
    try:
        datetime.now().strftime(fmt)
    except ValueError as exc:
        raise _fail(f"dateFormat {fmt!r} is not valid: {exc}.", where) from None
    return fmt


@dataclass
class Column:
    source: str
    target: Target
    transforms: list[Callable[[str], str]] = field(default_factory=list)
    value_map: dict[str, Any] | None = None
    split: str | None = None
    type: str | None = None
    date_format: str | None = None
    default: Any = None
    has_default: bool = False


@dataclass
class Mapping:
    columns: list[Column]
    constants: list[tuple[Target, Any]]
    consent_column: str | None = None
    consent_format: str | None = None
    record: str = ""
    sources: list[str] = field(default_factory=list)  # every column the mapping reads (to check a file's header)
    sheet: str = ""

    def __post_init__(self):
        self.identifier_columns = [c for c in self.columns if c.target.kind == "identifier"]

    def identifiers(self, data: dict[str, Any]) -> dict[str, Any]:
        """Only the record's identifiers (the first pass over a file needs no more)."""
        if "\0error" in data:
            raise RowInvalid(f"The record is {data['\0error']}.", code="import.record")
        out = ProfileInput()
        for target, value in self.constants:
            if target.kind == "identifier":
                _assign(out, target, value)
        for column in self.identifier_columns:
            value = _convert(column, _lookup(data, column.source))
            if value is not None:
                _assign(out, column.target, value)  # as apply() does, so both passes find the same key
        return out.identifiers

    def apply(self, data: dict[str, Any]) -> ProfileInput:
        if "\0error" in data:
            raise RowInvalid(f"The record is {data['\0error']}.", code="import.record")
        out = ProfileInput()
        for target, value in self.constants:
            _assign(out, target, value)
        for column in self.columns:
            value = _lookup(data, column.source)
            value = _convert(column, value)
            if value is None:
                continue
            _assign(out, column.target, value)
        if self.consent_column is not None:
            raw = _lookup(data, self.consent_column)
            if raw not in (None, ""):
                out.agreements_decided_at = _consent_time(raw, self.consent_format, self.consent_column)
        return out


def mapping_compile(raw: Any, *, agreements: set[str] | None = None) -> Mapping:
    """Check a mapping and prepare it; ``MappingInvalid`` names what is wrong."""
    if agreements is None:
        agreements = set(Agreement.objects.filter(is_active=True).values_list("key", flat=True))
    if not isinstance(raw, dict):
        raise _fail("The mapping must be a JSON object with 'columns'.", "mapping")
    unknown = set(raw) - MAPPING_KEYS
    if unknown:
        raise _fail(f"Unknown mapping key(s): {', '.join(sorted(unknown))}.", f"mapping.{sorted(unknown)[0]}")
    columns_raw = raw.get("columns")
    if not isinstance(columns_raw, dict) or not columns_raw:
        raise _fail("'columns' must be an object: source column → {\"to\": target, …}.", "mapping.columns")
    columns = []
    for source, spec in columns_raw.items():
        where = f"mapping.columns.{source}"
        if not isinstance(spec, dict):
            raise _fail('Each column is an object such as {"to": "email"} or {"skip": true}.', where)
        bad = set(spec) - COLUMN_KEYS
        if bad:
            raise _fail(f"Unknown key(s) {', '.join(sorted(bad))}; use {', '.join(sorted(COLUMN_KEYS))}.", where)
        if spec.get("skip") is True:
            continue
        if "skip" in spec and spec["skip"] is not False:
            raise _fail("skip must be true or false.", f"{where}.skip")
        columns.append(_column(source, spec, where, agreements))
    constants = []
    constants_raw = raw.get("constants", {}) or {}
    if not isinstance(constants_raw, dict):
        raise _fail("'constants' must be an object: target → value.", "mapping.constants")
    for text, value in constants_raw.items():
        where = f"mapping.constants.{text}"
        target = target_parse(text, where, agreements)
        if isinstance(value, dict):
            raise _fail("A constant is a string, number, boolean, list or null.", where)
        if target.kind == "agreement" and not isinstance(value, bool):
            raise _fail("An agreement constant is true or false.", where)
        constants.append((target, value))
    targets = {c.target.kind for c in columns} | {t.kind for t, _ in constants}
    if "identifier" not in targets:
        raise _fail(
            f"The mapping names no identifier: map a column to one of {', '.join(IDENTIFIERS)}.", "mapping.columns"
        )
    consent = raw.get("consentTime")
    consent_column = consent_format = None
    if consent is not None:
        if isinstance(consent, str) and consent:
            consent_column = consent
        elif (
            isinstance(consent, dict)
            and isinstance(consent.get("column"), str)
            and set(consent)
            <= {
                "column",
                "dateFormat",
            }
        ):
            consent_column = consent["column"]
            if "dateFormat" in consent:
                consent_format = _date_format_check(consent["dateFormat"], "mapping.consentTime.dateFormat")
        else:
            raise _fail('consentTime is a column name, or {"column": …, "dateFormat": …}.', "mapping.consentTime")
        if "agreement" not in targets:
            raise _fail("consentTime is given but no column or constant maps to agreements.KEY.", "mapping.consentTime")
    record = raw.get("record", "")
    if not isinstance(record, str):
        raise _fail("record is the name of the XML element holding one profile.", "mapping.record")
    sheet = raw.get("sheet", "")
    if not isinstance(sheet, str):
        raise _fail("sheet is the name of the XLSX worksheet to read (default: the first).", "mapping.sheet")
    sources = [c.source for c in columns] + ([consent_column] if consent_column else [])
    return Mapping(columns, constants, consent_column, consent_format, record, sources, sheet)


def _column(source: str, spec: dict, where: str, agreements: set[str]) -> Column:
    target = target_parse(spec.get("to"), f"{where}.to", agreements)
    column = Column(source=source, target=target)
    transforms = spec.get("transform", [])
    if isinstance(transforms, str):
        transforms = [transforms]
    if not isinstance(transforms, list):
        raise _fail(f"transform is a list of {', '.join(TRANSFORMS)}.", f"{where}.transform")
    for name in transforms:
        if name not in TRANSFORMS:
            raise _fail(f"Unknown transform {name!r}; use {', '.join(TRANSFORMS)}.", f"{where}.transform")
        column.transforms.append(TRANSFORMS[name])
    if "map" in spec:
        if not isinstance(spec["map"], dict) or not spec["map"]:
            raise _fail('map is an object of value → value, e.g. {"Y": true, "N": false}.', f"{where}.map")
        column.value_map = spec["map"]
    if "split" in spec:
        if not isinstance(spec["split"], str) or not spec["split"]:
            raise _fail("split is the separator of a list, e.g. '|'.", f"{where}.split")
        if target.kind not in ("tags", "attribute"):
            raise _fail(f"split makes a list, which {target.text} cannot hold (tags or attributes can).", where)
        column.split = spec["split"]
    if "type" in spec:
        if spec["type"] not in TYPES:
            raise _fail(f"Unknown type {spec['type']!r}; use {', '.join(TYPES)}.", f"{where}.type")
        column.type = spec["type"]
        allowed = {
            "identifier": {"string"},
            "field": {"string", "date"} if target.is_date else {"string"},
            "agreement": {"boolean"},
            "tags": {"string", "list"},
            "attribute": set(TYPES),
        }[target.kind]
        if column.type not in allowed:
            raise _fail(f"type {column.type} cannot apply to {target.text}.", f"{where}.type")
    if "dateFormat" in spec:
        column.date_format = _date_format_check(spec["dateFormat"], f"{where}.dateFormat")
        if not (target.is_date or target.kind == "attribute"):
            raise _fail(f"dateFormat cannot apply to {target.text} (a date field or an attribute).", where)
        if column.type not in (None, "date", "datetime"):
            raise _fail(f"dateFormat cannot apply with type {column.type}.", where)
    if column.split and column.type == "list":
        raise _fail("split and type list both make a list: give one of them.", where)
    if target.kind == "agreement" and column.split:
        raise _fail("An agreement takes one true or false.", where)
    if "default" in spec:
        column.default, column.has_default = spec["default"], True
        if isinstance(column.default, dict):
            raise _fail("A default is a string, number, boolean, list or null.", f"{where}.default")
    return column


_MISSING = object()


def record_value(data: dict[str, Any], path: str) -> Any:
    """A record's value of a column (a dotted path for nested records), None when it has none."""
    return _lookup(data, path)


def _lookup(data: dict[str, Any], path: str) -> Any:
    value = data.get(path, _MISSING)
    if value is not _MISSING:
        return value
    if "." not in path:
        return None
    node: Any = data
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def _convert(column: Column, value: Any) -> Any:
    where = column.target.text
    if isinstance(value, str):
        for transform in column.transforms:
            value = transform(value)
        if value == "" or not value.strip():
            value = None
    elif column.transforms and value is not None and not isinstance(value, int | float | bool | date | time):
        raise RowInvalid(f"{column.source}: a text transform cannot apply to {type(value).__name__}.", field=where)
    if value is None:
        return column.default if column.has_default else None
    if column.value_map is not None:
        key = value if isinstance(value, str) else _text(value)
        if key in column.value_map:
            value = column.value_map[key]
            if value is None:
                return column.default if column.has_default else None
    if column.split is not None and isinstance(value, str):
        value = split_items(value, column.split)
    if column.date_format:
        return _date(value, column, where)
    if column.type:
        return _cast(value, column.type, column.source, where)
    return value


def split_items(text: str, separator: str) -> list[str]:
    """The items of a list written in one cell, as spreadsheets and exports write them: separated by
    ``separator``, an item in double quotes may hold the separator, a doubled quote inside is one quote, each item
    trimmed and empty ones dropped: ``"Customer","VIP Club"`` gives ``Customer`` and ``VIP Club``. A separator of
    several characters (other than one with spaces around it, such as ``", "``) splits plainly.
    """
    delimiter = separator.strip() or separator
    if len(delimiter) != 1 or delimiter == '"':
        return [part.strip() for part in text.split(separator) if part.strip()]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, skipinitialspace=True, strict=False)
    try:
        rows = list(reader)
    except csv.Error:  # a NUL byte, or a field over the size limit: read the cell plainly
        rows = [text.split(delimiter)]
    return [item.strip() for row in rows for item in row if item.strip()]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return str(int(value))
    if isinstance(value, datetime):
        return _iso_datetime(value)
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)


def _iso_datetime(value: datetime) -> str:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def excel_serial(value: int | float) -> datetime:
    """The date and time of an Excel serial date (1900 date system); ValueError outside 1900-01-01 … 9999-12-31."""
    if isinstance(value, bool) or not 1 <= value < _EXCEL_MAX_SERIAL:
        raise ValueError(value)
    if value < 61:
        value += 1  # Excel counts a 29 February 1900 that never was
    return _EXCEL_EPOCH + timedelta(days=value)


def _as_datetime(value: Any) -> datetime | None:
    """A value that is a date already (a spreadsheet's date cell, or a number read as an Excel serial date)."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value, time())
    if isinstance(value, int | float) and not isinstance(value, bool):
        return excel_serial(value)
    return None


def _date(value: Any, column: Column, where: str):
    try:
        parsed = _as_datetime(value)
    except ValueError:
        raise RowInvalid(
            f"{column.source}: {value!r} is not an Excel serial date.", field=where, code="import.date"
        ) from None
    if parsed is None and not isinstance(value, str):
        raise RowInvalid(f"{column.source}: expected a date as {column.date_format}; got {value!r}.", field=where)
    try:
        parsed = parsed or datetime.strptime(value.strip(), column.date_format)
    except ValueError:
        raise RowInvalid(
            f"{column.source}: {value!r} does not match the date format {column.date_format}.",
            field=where,
            code="import.date",
        ) from None
    if column.type == "datetime":
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).isoformat()
    if column.target.is_date:
        return parsed.date()
    return parsed.date().isoformat()


def _cast(value: Any, kind: str, source: str, where: str) -> Any:
    try:
        if kind == "string":
            return _text(value) if not isinstance(value, list) else [_text(v) for v in value]
        if kind == "list":
            return _list(value, source, where)
        if kind in ("number", "integer"):
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, str):
                text = value.strip().replace(" ", "").replace("\u00a0", "")
                if text.count(",") == 1 and "." not in text:
                    text = text.replace(",", ".")  # a decimal comma
                value = float(text) if kind == "number" else int(text)
            if kind == "integer":
                if isinstance(value, float) and not value.is_integer():
                    raise ValueError
                return int(value)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError
            return int(value) if isinstance(value, float) and value.is_integer() and abs(value) < 2**53 else value
        if kind == "boolean":
            return _boolean(value, source, where)
        if kind in ("date", "datetime"):
            parsed = _as_datetime(value)
            if parsed is None:
                if not isinstance(value, str):
                    raise ValueError
                parsed = datetime.fromisoformat(value.strip())
            if kind == "date":
                return parsed.date().isoformat()
            return _iso_datetime(parsed)
    except (ValueError, TypeError, OverflowError):
        raise RowInvalid(f"{source}: {value!r} is not a {kind}.", field=where, code="import.type") from None
    return value


def _list(value: Any, source: str, where: str) -> list:
    """A list: as it is, or from a cell holding a JSON array (``["a", "b"]``, as our CSV export writes lists)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise RowInvalid(
                f'{source}: {value!r} is not a JSON array such as ["a", "b"].', field=where, code="import.type"
            ) from None
    if not isinstance(value, list) or any(isinstance(item, dict | list) for item in value):
        raise RowInvalid(f"{source}: {value!r} is not a list of values.", field=where, code="import.type")
    return [item for item in value if item not in (None, "")]


def _boolean(value: Any, source: str, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = _text(value).strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise RowInvalid(f"{source}: {value!r} is not true or false.", field=where, code="import.type")


def _assign(out: ProfileInput, target: Target, value: Any) -> None:
    kind = target.kind
    if kind == "identifier":
        if isinstance(value, list | dict | bool):
            raise RowInvalid(f"{target.text} must be one value.", field=target.text)
        out.identifiers[target.name] = _text(value) if not isinstance(value, str) else value
    elif kind == "field":
        if target.is_date and not isinstance(value, str):
            try:
                parsed = _as_datetime(value)
            except ValueError:
                parsed = None
            if parsed is None:
                raise RowInvalid(f"{target.text} must be a date; got {value!r}.", field=target.text, code="import.date")
            value = parsed.date()
        elif target.is_date:
            try:
                value = date.fromisoformat(value.strip())
            except ValueError:
                raise RowInvalid(
                    f"{target.text} must be a date as YYYY-MM-DD (or give a dateFormat); got {value!r}.",
                    field=target.text,
                    code="import.date",
                ) from None
        elif isinstance(value, int | float | date | time) and not isinstance(value, bool):
            value = _text(value)
        out.fields[target.name] = value
    elif kind == "attribute":
        if isinstance(value, date | time):
            value = _text(value)  # a spreadsheet's date cell: the ISO text attributes hold
        out.attributes[target.name] = value
    elif kind == "agreement":
        out.agreements[target.name] = _boolean(value, target.text, target.text)
    else:  # tags
        names = value if isinstance(value, list) else [value]
        out.tags.extend(_text(name) for name in names if name not in (None, ""))


def _consent_time(raw: Any, fmt: str | None, source: str) -> datetime:
    text = _text(raw).strip()
    try:
        parsed = _as_datetime(raw) or (datetime.strptime(text, fmt) if fmt else datetime.fromisoformat(text))
    except ValueError:
        raise RowInvalid(
            f"{source}: {raw!r} is not a date and time ({fmt or 'ISO 8601'}).",
            field="consentTime",
            code="import.date",
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
