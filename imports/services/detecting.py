"""Detecting a file before it is imported: its format, encoding and delimiter (CSV), sheet (XLSX), header and first
rows, which product's export it is (a preset, ``imports/presets.py``) and the mapping proposed for it, which an
import then takes as it is or edited. Nothing is stored."""

from __future__ import annotations

from datetime import date, time
from typing import Any

from consents.models import Agreement
from imports.mapping import record_value
from imports.models import Format
from imports.presets import SAMPLE_ROWS, mapping_propose
from imports.readers import FileUnusable, SheetMissing, format_guess, preview
from imports.services.common import ImportRefused
from profiles.models import AttributeDefinition

DETECT_ROWS = 5  # the first rows shown


def import_detect(
    *, file, name: str = "", fmt: str = "", encoding: str = "", delimiter: str = "", sheet: str = "", record: str = ""
) -> dict:
    """What a file is and the mapping proposed for it (``ImportRefused`` naming the part that cannot be used)."""
    if hasattr(file, "seek"):
        file.seek(0)
    head = file.read(4096)
    file.seek(0)
    fmt = fmt or format_guess(name or getattr(file, "name", "") or "", head)
    if fmt not in Format.values:
        raise ImportRefused(f"Unknown format {fmt!r}; use {', '.join(Format.values)}.", field="format")
    if delimiter and len(delimiter) != 1:
        raise ImportRefused("delimiter is one character.", field="delimiter")
    if fmt == "xml" and not record:
        raise ImportRefused("An XML file needs record: the element that holds one profile.", field="record")
    try:
        seen = preview(file, fmt, record=record, encoding=encoding, delimiter=delimiter, sheet=sheet, rows=SAMPLE_ROWS)
    except SheetMissing as exc:
        raise ImportRefused(str(exc), field="sheet") from None
    except (FileUnusable, LookupError) as exc:
        raise ImportRefused(str(exc), field="file") from None
    header = seen["columns"]
    records = [rec.data for rec in seen["records"]]
    proposal = mapping_propose(
        header=header,
        records=records,
        agreements=set(Agreement.objects.filter(is_active=True).values_list("key", flat=True)),
        attribute_types=dict(AttributeDefinition.objects.values_list("name", "type")),
    )
    mapping = proposal.mapping
    if fmt == "xml":
        mapping["record"] = record
    if fmt == "xlsx" and sheet:
        mapping["sheet"] = sheet
    return {
        "format": fmt,
        "encoding": seen["encoding"] if fmt != "xlsx" else None,
        "delimiter": seen["delimiter"] if fmt == "csv" else None,
        "sheet": sheet or None,
        "header": header,
        "rows": [{column: _plain(record_value(data, column)) for column in header} for data in records[:DETECT_ROWS]],
        "preset": proposal.preset,
        "presetLabel": proposal.label or None,
        "mapping": mapping,
    }


def _plain(value: Any) -> Any:
    """A value as JSON holds it (a spreadsheet's dates as ISO 8601 text)."""
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value
