"""Saved mappings: a mapping kept by name, offered by the wizard and taken by the API's ``mappingName``."""

from __future__ import annotations

from imports.mapping import mapping_compile
from imports.models import Format, SavedMapping
from imports.services.common import ImportRefused


def saved_mapping_save(*, name: str, mapping: dict, fmt: str = "") -> SavedMapping:
    """Keep ``mapping`` under ``name`` (a mapping of that name is replaced), for files of format ``fmt`` (empty:
    any). The mapping is checked as an import checks it (``MappingInvalid`` naming what is wrong)."""
    name = (name or "").strip()
    if not name:
        raise ImportRefused("name is required.", field="name")
    if fmt and fmt not in Format.values:
        raise ImportRefused(f"Unknown format {fmt!r}; use {', '.join(Format.values)}.", field="format")
    mapping_compile(mapping)
    saved, _ = SavedMapping.objects.update_or_create(name=name[:128], defaults={"mapping": mapping, "format": fmt})
    return saved
