"""What every phase of an import shares: the source and counts, the refusal, and the report's issues."""

from __future__ import annotations

import io
import logging
from contextlib import contextmanager

from django.conf import settings
from django.core.files.storage import default_storage

from crm.errors import ValidationFailed
from imports.mapping import Mapping, RowInvalid
from imports.models import ImportJob, Issue
from imports.readers import READERS, CountingReader
from profiles.normalize import identifier_normalize
from profiles.services.identity.input import identifiers_required

logger = logging.getLogger(__name__)


SOURCE = "import"


COUNT_KEYS = ("created", "updated", "merged", "unchanged", "failed", "superseded", "warnings")


REPORT_HEADER = ["line", "kind", "code", "field", "message", "original"]


class ImportRefused(ValidationFailed):
    """The file or the mapping cannot be used (nothing was read or written)."""

    code = "import.refused"


def _issue(imp, kind, line, error, original) -> Issue:
    if isinstance(error, dict):
        code, field, message = error.get("code", ""), error.get("field") or "", error.get("message", "")
    else:
        code, field, message = getattr(error, "code", ""), getattr(error, "field", "") or "", error.message
    return Issue(
        job=imp,
        kind=kind,
        line=line,
        code=code or "import.value",
        field=field[:256],
        message=message,
        original=original,
    )


def _superseded(imp, line: int, by: int, original: str) -> Issue:
    return Issue(
        job=imp,
        kind=Issue.Kind.WARNING,
        line=line,
        code="import.superseded",
        field="",
        message=f"Superseded by line {by}, which names the same profile (the last line wins).",
        original=original,
    )


def _chunks(records, skip: int, size: int):
    """Lists of ``size`` records after the first ``skip`` (a resumed pass reads again up to its checkpoint)."""
    chunk = []
    for position, record in enumerate(records):
        if position < skip:
            continue
        chunk.append(record)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    yield chunk


@contextmanager
def _opened(imp: ImportJob, mapping: Mapping):
    """The job's records, streamed from the storage, with the byte counter for progress."""
    with default_storage.open(imp.file.name, "rb") as handle:
        counting = CountingReader(handle)
        stream = io.BufferedReader(counting, buffer_size=256 * 1024)
        reader = READERS[imp.format]
        records = reader(
            stream, encoding=imp.encoding, delimiter=imp.delimiter, record=mapping.record, sheet=mapping.sheet
        )
        try:
            yield records, counting
        finally:
            records.close()


def _key(identifiers: dict) -> str:
    """The line's strongest identifier (``IDENTIFIER_PRIORITY``), canonical enough to find the same person twice
    in a file; full validation is the batch's (an invalid value fails its line there, with its line number)."""
    ranked = {kind: identifiers.get(kind) for kind in settings.IDENTIFIER_PRIORITY}
    kind, value = next(iter(identifiers_required(identifiers=ranked, error=RowInvalid).items()))
    text = str(value).strip()
    if kind == "email":
        return f"email:{text.lower()}"
    if kind == "customId":
        return f"customId:{text}"
    return f"{kind}:{identifier_normalize(kind, value)}"
