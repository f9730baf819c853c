"""The one profile exporter: any set of profiles as CSV or JSON Lines, streamed with flat memory.

Every export (the admin's "Export as CSV", ``GET /v4/clients/export.csv|.jsonl``, scheduled exports) calls
``export_queryset`` to pick the profiles and ``export_chunks`` to write them.

- CSV: a header row, then one row per profile: every native column of the field registry, ``anonymous``, one
  ``attributes.NAME`` column per attribute definition, one ``agreements.KEY`` column per agreement (the state in
  force: granted, denied, awaiting_confirmation, or empty), and ``tags`` (a JSON array of names). PostgreSQL
  writes the rows (``COPY (SELECT …) TO STDOUT``), so a million profiles cost little more than the raw copy; cells
  that start like a spreadsheet formula (``= + - @``, tab, carriage return) get a leading apostrophe, in SQL.
- JSON Lines: Synerise's profile document (the GET endpoints' JSON) per line, read in keyset chunks.

Both read in id order and hold at most one chunk in memory.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connections
from django.db.models import QuerySet
from django.http import QueryDict
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from consents.models import Agreement
from crm.errors import NotFound, ValidationFailed
from crm.replica import REPLICA, read_alias, replica_reads
from exports.metrics import EXPORT_ROWS
from profiles.documents import profile_documents_by_ids
from profiles.fields import ALL_COLUMNS, api_name
from profiles.filters import profiles_filter
from profiles.models import AttributeDefinition, Profile
from segments.models import Segment
from segments.services import segment_q

FORMATS = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson; charset=utf-8"}
BOM = b"\xef\xbb\xbf"
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# Bytes gathered before a piece is handed on (COPY sends one message per row; a write per row would be slow).
CHUNK_BYTES = 64 * 1024


def csv_cell(value) -> str:
    """A cell a spreadsheet shows as text (OWASP's CSV injection advice): a leading apostrophe on formula starts."""
    if value is None:
        return ""
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


# The same rule in SQL, for the cells PostgreSQL writes.
_PREFIXES_SQL = "'=', '+', '-', '@', E'\\t', E'\\r'"


def _safe(expression: str) -> str:
    expression = f"({expression})"
    return f"CASE WHEN left({expression}, 1) IN ({_PREFIXES_SQL}) THEN '''' || {expression} ELSE {expression} END"


# --- which profiles ------------------------------------------------------------------------------------------


def changed_since_parse(value: str | None, *, field: str = "changedSince") -> datetime | None:
    """An ISO 8601 time (a time without an offset is UTC); None when absent."""
    if value in (None, ""):
        return None
    try:
        parsed = parse_datetime(value.strip())
        if parsed is not None:
            parsed = parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, timezone.UTC)
            parsed.astimezone(timezone.UTC)  # a time at the calendar's edge that UTC cannot hold is refused here
    except (ValueError, OverflowError):
        parsed = None
    if parsed is None:
        raise ValidationFailed(f"{field} must be an ISO 8601 date and time, e.g. 2026-01-31T12:00:00Z.", field=field)
    return parsed


def export_queryset(
    *, filters: QueryDict | dict | str = "", segment_id: int | None = None, changed_since: datetime | None = None
) -> QuerySet:
    """The profiles an export writes: the list's filters (a query string or a QueryDict), a segment, and a change
    time. ``changed_since`` reads ``updated_at``, which every change moves: native fields and custom attributes
    (the profile's own row), tags and consents (their services mark the profile changed)."""
    if isinstance(filters, str):
        filters = QueryDict(filters)
    elif isinstance(filters, dict):
        query = QueryDict(mutable=True)
        for key, value in filters.items():
            query.setlist(key, value if isinstance(value, list) else [value])
        filters = query
    if segment_id is not None and "segment" in filters:
        filters = filters.copy()  # the list's own segment filter would evaluate the same tree a second time
        filters.pop("segment")
    queryset = profiles_filter(filters)
    if segment_id is not None:
        # The segment's profiles (its tree, evaluated now), intersected with the filters.

        segment = Segment.objects.filter(pk=segment_id).first() if 0 < segment_id < 2**63 else None
        if segment is None:
            raise NotFound(f"Unknown segment {segment_id}.", field="segment", code="segment.not_found")
        queryset = queryset.filter(segment_q(segment=segment))
    if changed_since is not None:
        queryset = queryset.filter(updated_at__gte=changed_since)
    return queryset


# --- CSV --------------------------------------------------------------------------------------------------------


@dataclass
class ExportCounter:
    """Filled in as an export is written: how many profiles it held."""

    rows: int = 0


@dataclass(frozen=True)
class Column:
    header: str
    sql: str


def export_columns() -> list[Column]:
    """The CSV's columns, in order; attribute and agreement columns follow the definitions of the moment."""

    fields = {f.column: f for f in Profile._meta.concrete_fields}
    columns: list[Column] = []
    for column in ALL_COLUMNS:
        if column == "attributes":
            continue
        field = fields[column]
        header = "clientId" if column == "id" else api_name(column)
        kind = field.get_internal_type()
        if kind == "DateTimeField":
            sql = f"to_json(p.{column}) #>> '{{}}'"  # ISO 8601 with a T, as the API writes times
        elif kind in {"CharField", "TextField", "URLField", "EmailField"}:
            sql = _safe(f"p.{column}")
        else:
            sql = f"p.{column}"
        columns.append(Column(header, sql))
        if column == "uuid":
            anonymous = "p.email IS NULL"
            if settings.CUSTOM_ID_IS_MAIN_IDENTIFIER:
                anonymous += " AND p.custom_id IS NULL"
            columns.append(Column("anonymous", f"CASE WHEN {anonymous} THEN 'true' ELSE 'false' END"))
    for name in AttributeDefinition.objects.order_by("name").values_list("name", flat=True):
        columns.append(Column(f"attributes.{name}", _safe(f"p.attributes ->> {_literal(name)}")))
    for key in Agreement.objects.order_by("-is_default", "id").values_list("key", flat=True):
        columns.append(Column(f"agreements.{key}", f"cs.states ->> {_literal(key)}"))
    columns.append(
        Column(
            "tags",
            "(SELECT json_agg(t.name ORDER BY t.name) FROM profiles_profiletag pt"
            " JOIN profiles_tag t ON t.id = pt.tag_id WHERE pt.profile_id = p.id)",
        )
    )
    return columns


def _literal(text: str) -> str:
    """A SQL string literal (attribute names and agreement keys are data, so quoted, never pasted raw)."""
    from psycopg.sql import Literal

    return Literal(text).as_string()


_CONSENTS_JOIN = """
LEFT JOIN LATERAL (
    SELECT jsonb_object_agg(ag.key, s.status) AS states
    FROM consents_consentstate s JOIN consents_agreement ag ON ag.id = s.agreement_id
    WHERE s.profile_id = p.id
) cs ON true
"""


def _ids_subquery(queryset: QuerySet) -> tuple[str, tuple] | None:
    """The filtered profiles' ids as SQL, or None when the queryset takes every profile."""
    query = queryset.order_by().values("pk").query
    if not query.where and not query.combinator:
        return None
    sql, params = query.sql_with_params()
    return sql, tuple(params)


def export_csv_sql(queryset: QuerySet, columns: list[Column]) -> tuple[str, tuple]:
    """``SELECT`` of the CSV's cells for these profiles, in id order, and its parameters."""
    select = ", ".join(c.sql for c in columns)
    sql = f"SELECT {select} FROM profiles_profile p {_CONSENTS_JOIN}"  # noqa: S608 (columns are ours; names quoted)
    params: tuple = ()
    if (ids := _ids_subquery(queryset)) is not None:
        sql += f" WHERE p.id IN ({ids[0]})"
        params = ids[1]
    return sql + " ORDER BY p.id", params


def header_line(columns: list[Column]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow([csv_cell(c.header) for c in columns])
    return buffer.getvalue().encode()


def _csv_chunks(queryset: QuerySet, counter: ExportCounter, alias: str) -> Iterator[bytes]:
    columns = export_columns()
    sql, params = export_csv_sql(queryset, columns)
    yield header_line(columns)
    connection = connections[alias]
    connection.ensure_connection()
    # One statement, one snapshot; PostgreSQL quotes the cells (CSV format) and psycopg hands the rows on as
    # they arrive.
    statement = f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)"
    with connection.connection.cursor() as cursor:
        buffer = bytearray()
        with cursor.copy(statement, params or None) as copy:
            for data in copy:
                buffer += data
                if len(buffer) >= CHUNK_BYTES:
                    yield bytes(buffer)
                    buffer.clear()
        counter.rows = cursor.rowcount
        EXPORT_ROWS.labels("csv").inc(max(cursor.rowcount, 0))
        if buffer:
            yield bytes(buffer)


# --- JSON Lines ---------------------------------------------------------------------------------------------------

JSONL_CHUNK = 1000


def _jsonl_chunks(queryset: QuerySet, counter: ExportCounter, alias: str) -> Iterator[bytes]:

    ids_query = queryset.using(alias).order_by("pk").values_list("pk", flat=True)
    last = 0
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode
    while True:
        ids = list(ids_query.filter(pk__gt=last)[:JSONL_CHUNK])
        if not ids:
            return
        with replica_reads() if alias == REPLICA else nullcontext():
            documents = profile_documents_by_ids(ids)
        counter.rows += len(documents)
        EXPORT_ROWS.labels("jsonl").inc(len(documents))
        yield "".join(encode(document) + "\n" for document in documents).encode()
        last = ids[-1]


def export_chunks(
    *, queryset: QuerySet, fmt: str, bom: bool = False, counter: ExportCounter | None = None
) -> Iterator[bytes]:
    """The export of these profiles in ``fmt`` (csv or jsonl) as pieces of bytes, UTF-8 (with a BOM for
    spreadsheets when asked; CSV only, JSON Lines never carries one)."""
    if fmt not in FORMATS:
        raise ValidationFailed(f"format must be one of {', '.join(FORMATS)}.", field="format")
    counter = counter if counter is not None else ExportCounter()
    # The chunks are made after the caller returns (a streamed answer): the database is chosen now, the read
    # replica inside ``replica_reads`` (the API's and the admin's exports), else the primary.
    alias = read_alias()
    if fmt == "jsonl":
        return _jsonl_chunks(queryset, counter, alias)
    chunks = _csv_chunks(queryset, counter, alias)
    return _with_bom(chunks) if bom else chunks


def _with_bom(chunks: Iterator[bytes]) -> Iterator[bytes]:
    yield BOM
    yield from chunks
