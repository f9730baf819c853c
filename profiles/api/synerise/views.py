"""Synerise-compatible profile endpoints (Synerise's documentation)."""

from __future__ import annotations

import re

from django.conf import settings
from django.db.models import F
from django.http import QueryDict
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from crm.actors import actor_of
from crm.api import ApiView, json_response
from crm.errors import ValidationFailed
from crm.replica import replica_reads
from crm.services import api_key_token_issue
from privacy.services import profile_export
from profiles.api.synerise.documents import (
    ProfileDocumentSerializer,
    profile_document_by_identifier,
    profile_documents_by_ids,
)
from profiles.api.synerise.errors import render_error
from profiles.api.synerise.requests import LoginSerializer, ProfileWriteSerializer, profile_input
from profiles.filters import profiles_filter
from profiles.models import Profile
from profiles.services import profile_delete, profile_lookup, profile_update, profile_upsert

SOURCE = "api"
LOOKUP_KINDS = {"email": "email", "phone": "phone", "uuid": "uuid", "customId": "customId"}
SORT_FIELDS = {
    "clientId": "id",
    "email": "email",
    "firstName": "first_name",
    "lastName": "last_name",
    "city": "city",
    "createdAt": "created_at",
    "updatedAt": "updated_at",
    "lastActivityDate": "last_activity_date",
}
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = settings.LIST_MAX_PAGE_SIZE

ProfileJson = ProfileDocumentSerializer
ProfileListJson = ProfileDocumentSerializer(many=True)
ProfileWrite = ProfileWriteSerializer
ErrorJson = inline_serializer(
    "SyneriseError",
    {
        "status": serializers.IntegerField(),
        "error": serializers.CharField(),
        "message": serializers.CharField(),
        "path": serializers.CharField(),
        "timestamp": serializers.DateTimeField(),
        "code": serializers.CharField(),
        "field": serializers.CharField(required=False),
    },
)
ERRORS = {code: OpenApiResponse(ErrorJson) for code in (400, 401, 403, 404, 409, 411, 413, 429, 503)}
# An erased profile's clientId, merged-in ids and uuids answer 410 Gone (code profile.erased) for good.
ERRORS[410] = OpenApiResponse(
    ErrorJson, description="Gone (code `profile.erased`): the clientId or uuid named a profile that was erased."
)
API_VERSION = OpenApiParameter(
    "Api-Version", OpenApiTypes.STR, OpenApiParameter.HEADER, description="Accepted, e.g. 4.4"
)


class SyneriseView(ApiView):
    error_renderer = staticmethod(render_error)

    @property
    def actor(self) -> str:
        return actor_of(self.request)


class LoginView(SyneriseView):
    ip_rate_limit = "LOGIN_RATE_LIMIT"
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="auth_login_profile",
        tags=["Authentication"],
        summary="Exchange an API key for a short-lived JWT",
        request=LoginSerializer,
        responses={200: inline_serializer("LoginResponse", {"token": serializers.CharField()}), **ERRORS},
    )
    def post(self, request):
        serializer = LoginSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response({"token": api_key_token_issue(secret=serializer.validated_data["apiKey"])})


def _synerise_query(params: QueryDict) -> QueryDict:
    """Synerise's ``filters[field]=value`` and ``filters[attributes.NAME][op]=value`` → our filter names."""
    data = QueryDict(mutable=True)
    for key, values in params.lists():
        match = re.fullmatch(r"filters\[([^\]]+)\](?:\[([a-z]+)\])?", key)
        if not match:
            data.setlist(key, values)
            continue
        field, op = match.groups()
        if field.startswith("attributes."):
            name = field.removeprefix("attributes.")
            for value in values:
                data.appendlist("attribute", f"{name}:{op or 'eq'}:{value}")
        else:
            data.setlist(field, values)
    return data


def int_param(params, name: str, default: int, *, low: int, high: int) -> int:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationFailed(f"{name} must be a whole number.", field=name) from None
    if not low <= value <= high:
        raise ValidationFailed(f"{name} must be between {low} and {high}.", field=name)
    return value


def list_ordering(sort_by: str | None) -> list:
    if not sort_by:
        return ["-id"]
    name, descending = sort_by, False
    if name.startswith("-"):
        name, descending = name[1:], True
    if ":" in name:
        name, direction = name.split(":", 1)
        descending = direction.lower() == "desc"
    if name not in SORT_FIELDS:
        raise ValidationFailed(f"sortBy must be one of {', '.join(SORT_FIELDS)}.", field="sortBy")
    column = F(SORT_FIELDS[name])
    tiebreak = F("id")
    if descending:
        return [column.desc(nulls_last=True), tiebreak.desc()]
    return [column.asc(nulls_last=True), tiebreak.asc()]


def profile_list_response(queryset, params) -> Response:
    """One page of a profile list (``pageIndex``, ``pageSize``, ``sortBy``), never beyond LIST_MAX_RESULTS, with the
    total in ``X-Total-Count`` (capped); shared by the lists and a segment's profiles."""
    queryset = queryset.order_by(*list_ordering(params.get("sortBy")))
    page_size = int_param(params, "pageSize", DEFAULT_PAGE_SIZE, low=1, high=MAX_PAGE_SIZE)
    page_index = int_param(params, "pageIndex", 0, low=0, high=settings.LIST_MAX_RESULTS)
    start = page_index * page_size
    limit = settings.LIST_MAX_RESULTS
    if start >= limit:
        raise ValidationFailed(
            f"At most {limit} profiles can be listed; narrow the filters instead of paging further.",
            field="pageIndex",
        )
    ids = list(queryset.values_list("pk", flat=True)[start : min(start + page_size, limit)])
    response = Response(profile_documents_by_ids(ids))
    total = queryset.values("pk")[: limit + 1].count()
    response["X-Total-Count"] = str(min(total, limit))
    response["X-Total-Count-Capped"] = "true" if total > limit else "false"
    response["X-Page-Index"] = str(page_index)
    response["X-Page-Size"] = str(page_size)
    return response


class ClientListCreateView(SyneriseView):
    @extend_schema(
        operation_id="clients_list",
        tags=["Profiles"],
        summary="List profiles (at most 10,000 entries over all pages)",
        parameters=[
            API_VERSION,
            OpenApiParameter("pageIndex", int, description="0-based page number"),
            OpenApiParameter("pageSize", int, description=f"1–{MAX_PAGE_SIZE}, default {DEFAULT_PAGE_SIZE}"),
            OpenApiParameter(
                "sortBy",
                str,
                description="clientId, email, firstName, lastName, city, createdAt, "
                "updatedAt or lastActivityDate; '-' prefix or ':desc' suffix for descending",
            ),
            OpenApiParameter(
                "filters",
                OpenApiTypes.OBJECT,
                style="deepObject",
                explode=True,
                description="filters[email]=…, filters[city]=…, filters[anonymous]=true, "
                "filters[attributes.NAME][gt]=5 (eq, not, gt, gte, lt, lte, contains, exists)",
            ),
            OpenApiParameter("attribute", str, many=True, description="NAME:OP:VALUE, repeatable"),
            OpenApiParameter("segment", int, description="only the profiles of this segment (its tree, exact)"),
        ],
        responses={200: ProfileListJson, **ERRORS},
    )
    @replica_reads()
    def get(self, request):
        params = _synerise_query(request.query_params)
        return profile_list_response(profiles_filter(params), params)

    @extend_schema(
        operation_id="clients_create",
        tags=["Profiles"],
        summary="Create a profile, or update the one its identifiers name",
        parameters=[API_VERSION],
        request=ProfileWrite,
        responses={202: OpenApiResponse(description="Accepted, no content"), **ERRORS},
    )
    def post(self, request):
        profile_upsert(data=profile_input(request.data), source=SOURCE, actor=self.actor)
        return Response(status=202)


class ClientDetailView(SyneriseView):
    """One profile, named by clientId or by an identifier in the path."""

    def get_profile(self) -> Profile:
        if "client_id" in self.kwargs:
            return profile_lookup(kind="clientId", value=self.kwargs["client_id"])
        return profile_lookup(kind=LOOKUP_KINDS[self.kwargs["kind"]], value=self.kwargs["value"])

    @extend_schema(
        tags=["Profiles"],
        summary="Get a profile",
        parameters=[
            API_VERSION,
            OpenApiParameter(
                "expand",
                str,
                description="'expressions' adds an expressions object: each admin-defined expression's value",
            ),
        ],
        responses={200: ProfileJson, **ERRORS},
    )
    @replica_reads()
    def get(self, request, **kwargs):
        if "client_id" in self.kwargs:
            kind, value = "clientId", self.kwargs["client_id"]
        else:
            kind, value = LOOKUP_KINDS[kwargs["kind"]], kwargs["value"]
        expand = {part.strip() for part in request.query_params.get("expand", "").split(",") if part.strip()}
        unknown = expand - {"expressions"}
        if unknown:
            raise ValidationFailed(f"expand takes 'expressions'; got '{sorted(unknown)[0]}'.", field="expand")
        document = profile_document_by_identifier(kind=kind, value=value)
        if "expressions" in expand:
            from segments.expressions import expressions_document

            document = {**document, "expressions": expressions_document(profile_lookup(kind=kind, value=value))}
        return json_response(request, document)  # the lookup is the hottest read: Response's bytes, less machinery

    @extend_schema(
        tags=["Profiles"],
        summary="Update a profile (send only what changes; null deletes or resets)",
        parameters=[API_VERSION],
        request=ProfileWrite,
        responses={202: OpenApiResponse(description="Accepted, no content"), **ERRORS},
    )
    def post(self, request, **kwargs):
        data = profile_input(request.data)
        profile_update(profile=self.get_profile(), data=data, source=SOURCE, actor=self.actor)
        return Response(status=202)

    @extend_schema(
        tags=["Profiles"],
        summary="Delete (erase) a profile",
        description=(
            "Deleting is erasing: the profile's personal data, identifiers, events, notes, orders, tags, consents, "
            "merge snapshots and stored answers go; the consent ledger keeps its records with the IP address and "
            "user agent blanked. Its clientId, the clientIds merged into it and its uuids answer 410 Gone "
            "(`profile.erased`) from then on; its e-mail, phone and customId name nobody (404) and may sign up "
            "again as a new profile. A `profile.deleted` system event (ids only) records who asked and when."
        ),
        parameters=[API_VERSION],
        responses={202: OpenApiResponse(description="Accepted, no content"), **ERRORS},
    )
    def delete(self, request, **kwargs):
        profile_delete(profile=self.get_profile(), source=SOURCE, actor=self.actor)
        return Response(status=202)


class ClientByIdView(ClientDetailView):
    pass


ExportJson = inline_serializer(
    "ProfileExport",
    {
        "format": serializers.CharField(),
        "exportedAt": serializers.DateTimeField(),
        "clientId": serializers.IntegerField(),
        "profile": serializers.DictField(help_text="Every native field, by model name."),
        "identifiers": inline_serializer(
            "ProfileExportIdentifier",
            {
                "kind": serializers.CharField(),
                "value": serializers.CharField(),
                "firstSeen": serializers.DateTimeField(),
                "lastSeen": serializers.DateTimeField(),
            },
            many=True,
        ),
        "attributes": serializers.DictField(help_text="Custom attributes."),
        "tags": serializers.ListField(child=serializers.DictField(), help_text="name, addedAt"),
        "consents": serializers.DictField(help_text="states (decisions in force) and ledger (every record)"),
        "events": serializers.ListField(child=serializers.DictField(), help_text="The timeline, oldest first."),
        "notes": serializers.ListField(child=serializers.DictField(), help_text="text, author, time"),
        "orders": serializers.DictField(help_text="orders and the commerce figures"),
        "merges": serializers.ListField(child=serializers.DictField(), help_text="Profiles merged into this one."),
    },
)


class ClientExportView(SyneriseView):
    """Everything held about one person, as one JSON document (portability)."""

    @extend_schema(
        operation_id="clients_export",
        tags=["Profiles"],
        summary="Export everything held about a profile (data portability)",
        description=(
            "One JSON document: the profile, identifiers with first and last seen, custom attributes, tags, consents "
            "with their ledger, events, notes, orders and merges. Apps that keep more about a person add their "
            "part under a key of their own."
        ),
        parameters=[API_VERSION],
        responses={200: ExportJson, **ERRORS},
    )
    def get(self, request, client_id: int):
        profile = profile_lookup(kind="clientId", value=client_id)
        return Response(profile_export(profile=profile))


class ClientByIdentifierView(ClientDetailView):
    pass


@extend_schema_view(get=extend_schema(operation_id="crm_v1_list", summary="List profiles (older path)"))
class CrmListView(ClientListCreateView):
    """``GET /crm/v1/list``: the same list under Synerise's older path."""

    http_method_names = ["get", "head", "options"]
