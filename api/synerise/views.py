"""Synerise-compatible profile endpoints (Synerise's documentation)."""

from __future__ import annotations

import re

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

from api.base import json_response
from api.documents import ProfileDocumentSerializer
from api.paging import PAGE_PARAMETERS, SORT_BY_HELP, profile_list_response
from api.synerise.requests import LoginSerializer, ProfileWriteSerializer, profile_input
from api.v4 import API_VERSION, ERRORS, PlatformView
from crm.errors import ValidationFailed
from crm.replica import replica_reads
from crm.services import api_key_token_issue
from privacy.services import profile_erase, profile_export
from profiles.documents import profile_document_by_identifier
from profiles.filters import profiles_filter
from profiles.models import Profile
from profiles.services import profile_lookup, profile_update, profile_upsert
from segments.expressions import expressions_document

SOURCE = "api"
LOOKUP_KINDS = {"email": "email", "phone": "phone", "uuid": "uuid", "customId": "customId"}

ProfileJson = ProfileDocumentSerializer
ProfileListJson = ProfileDocumentSerializer(many=True)
ProfileWrite = ProfileWriteSerializer


class LoginView(PlatformView):
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


class ClientListCreateView(PlatformView):
    @extend_schema(
        operation_id="clients_list",
        tags=["Profiles"],
        summary="List profiles (at most 10,000 entries over all pages)",
        parameters=[
            API_VERSION,
            *PAGE_PARAMETERS,
            OpenApiParameter("sortBy", str, description=SORT_BY_HELP),
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


class ClientDetailView(PlatformView):
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
        profile_erase(profile=self.get_profile(), source=SOURCE, actor=self.actor)
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


class ClientPortabilityExportView(PlatformView):
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
