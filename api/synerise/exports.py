"""``GET /v4/clients/export.csv`` and ``/v4/clients/export.jsonl``: the list's filters, every matching profile,
streamed (the ``export`` scope)."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.negotiation import BaseContentNegotiation

from api.synerise.views import _synerise_query
from api.v4 import API_VERSION, ERRORS, PlatformView
from crm.errors import ValidationFailed
from crm.models import Scope
from crm.replica import replica_reads
from exports.stream import FORMATS, changed_since_parse, export_chunks, export_queryset

FILTER_PARAMETERS = [
    OpenApiParameter(
        "filters",
        OpenApiTypes.OBJECT,
        style="deepObject",
        explode=True,
        description="The list's filters: filters[email]=…, filters[city]=…, filters[anonymous]=true, "
        "filters[attributes.NAME][gt]=5 (eq, not, gt, gte, lt, lte, contains, exists); plain names work too "
        "(city=…, tags=vip, createdFrom=…)",
    ),
    OpenApiParameter("attribute", str, many=True, description="NAME:OP:VALUE, repeatable"),
    OpenApiParameter("tags", str, many=True, description="profiles with every named tag"),
    OpenApiParameter(
        "changedSince",
        OpenApiTypes.DATETIME,
        description="ISO 8601: only profiles changed since then (fields, attributes, tags or consents)",
    ),
    OpenApiParameter("segment", int, description="a segment's id: only its profiles"),
]
BOOLEAN_WORDS = {"1": True, "true": True, "0": False, "false": False, "": False}


class FirstRenderer(BaseContentNegotiation):
    """The file is the answer whatever ``Accept`` says; errors are JSON."""

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def _bool_param(params, name: str) -> bool:
    raw = (params.get(name) or "").strip().lower()
    if raw not in BOOLEAN_WORDS:
        raise ValidationFailed(f"{name} must be 1, 0, true or false.", field=name)
    return BOOLEAN_WORDS[raw]


def _segment_param(params) -> int | None:
    raw = params.get("segment")
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValidationFailed("segment must be a segment's id (a whole number).", field="segment") from None


class ClientBulkExportView(PlatformView):
    required_scope = Scope.EXPORT
    content_negotiation_class = FirstRenderer
    fmt = "csv"

    @replica_reads()
    def get(self, request):
        params = _synerise_query(request.query_params)
        bom = _bool_param(params, "bom")
        queryset = export_queryset(
            filters=params,
            segment_id=_segment_param(params),
            changed_since=changed_since_parse(params.get("changedSince")),
        )
        response = StreamingHttpResponse(
            export_chunks(queryset=queryset, fmt=self.fmt, bom=bom), content_type=FORMATS[self.fmt]
        )
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        response["Content-Disposition"] = f'attachment; filename="profiles-{stamp}.{self.fmt}"'
        return response


class ClientExportCsvView(ClientBulkExportView):
    fmt = "csv"

    @extend_schema(
        operation_id="clients_export_csv",
        tags=["Profiles"],
        summary="Every profile the filters select, as a streamed CSV file (scope export)",
        description="A header row, then one row per profile in clientId order: the native fields, anonymous, one "
        "attributes.NAME column per custom attribute, one agreements.KEY column per agreement (granted, denied, "
        "awaiting_confirmation or empty), tags (a JSON array). UTF-8; bom=1 starts the file with a byte order mark for "
        "spreadsheets. Cells that begin like a formula (= + - @, tab, carriage return) start with an apostrophe.",
        parameters=[
            API_VERSION,
            *FILTER_PARAMETERS,
            OpenApiParameter("bom", bool, description="1: a UTF-8 byte order mark first (for spreadsheets)"),
        ],
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="the CSV file"), **ERRORS},
    )
    def get(self, request):
        return super().get(request)


class ClientExportJsonlView(ClientBulkExportView):
    fmt = "jsonl"

    @extend_schema(
        operation_id="clients_export_jsonl",
        tags=["Profiles"],
        summary="Every profile the filters select, as streamed JSON Lines (scope export)",
        description="One profile document per line (the JSON of GET /v4/clients/{clientId}), in clientId order.",
        parameters=[API_VERSION, *FILTER_PARAMETERS],
        responses={
            (200, "application/x-ndjson"): OpenApiResponse(
                OpenApiTypes.STR, description="one Synerise profile document per line"
            ),
            **ERRORS,
        },
    )
    def get(self, request):
        return super().get(request)
