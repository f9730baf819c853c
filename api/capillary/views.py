"""Capillary-compatible customer upsert (Capillary's documentation): ``POST /v2/integrations/customer/upsert/bulk``."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.response import Response

from api.base import ApiView
from api.capillary.documents import documents_for
from api.capillary.errors import entry, render_error
from api.capillary.requests import CustomerSerializer, error_code
from api.capillary.translation import parse_entity
from api.parsers import text_check
from api.serializers import first_error
from consents.context import RequestMeta
from crm.actors import actor_of
from crm.errors import DomainError, ValidationFailed
from crm.models import ApiKey
from profiles.selectors import commerce_for
from profiles.services.surfaces import profiles_write_many

SOURCE = "api"
TAGS = ["Capillary"]


class MessageSerializer(serializers.Serializer):
    status = serializers.BooleanField(help_text="false for an error, true for a warning")
    code = serializers.IntegerField()
    message = serializers.CharField()
    reason = serializers.CharField(help_text="Our stable string code, e.g. identity.conflict")

    class Meta:
        ref_name = "CapillaryMessage"


UpsertResponse = inline_serializer(
    "CapillaryUpsertResponse",
    {
        "response": inline_serializer(
            "CapillaryUpsertItem",
            {
                "entityId": serializers.IntegerField(allow_null=True),
                "result": serializers.DictField(allow_null=True, help_text="The customer in Capillary's shape"),
                "errors": MessageSerializer(many=True),
                "warnings": MessageSerializer(many=True),
            },
            many=True,
        ),
        "totalCount": serializers.IntegerField(),
        "failureCount": serializers.IntegerField(),
    },
)
ErrorJson = inline_serializer(
    "CapillaryError", {"errors": MessageSerializer(many=True), "warnings": MessageSerializer(many=True)}
)


def _flag(value: str | None) -> bool:
    if value is None:
        return True
    lowered = value.strip().lower()
    if lowered not in ("true", "false"):
        raise ValidationFailed("skipChangeIdentifier must be true or false.", field="skipChangeIdentifier")
    return lowered == "true"


class CapillaryView(ApiView):
    error_renderer = staticmethod(render_error)


class UpsertBulkView(CapillaryView):
    per_item_text_check = True

    @extend_schema(
        operation_id="capillary_customer_upsert_bulk",
        tags=TAGS,
        summary="Upsert customers in bulk (Capillary)",
        description=(
            "Authenticate with HTTP Basic (the API key as user name or password). The body is a list "
            "of customers (a single object is accepted too); each is upserted through identity resolution on "
            "its `email`, `mobile` (our phone; digits with the country code) and `externalId` (our customId) "
            "identifiers, on its own: one failed customer never affects the others. "
            "`skipChangeIdentifier=false` lets a request replace a matched customer's e-mail, mobile or "
            "externalId; `true` (the default) keeps them and adds a warning. Identifiers that name two "
            "recognized customers are a per-item error (code 8010, reason `identity.conflict`), never a merge. "
            "`subscriptionInfo` OPTIN/OPTOUT sets consents; `extendedFields` gender/city/state/zip/dob_date are "
            "native fields, others custom attributes; `source`, `accountId`, `statusLabel`, "
            "`loyaltyInfo.loyaltyType`, `cardnumber` and verified channels are stored as custom attributes "
            "(docs/api.md). 200 with `response[]`, `totalCount` and `failureCount`."
        ),
        parameters=[
            OpenApiParameter(
                "skipChangeIdentifier", bool, description="false: identifiers may be changed (default true)"
            )
        ],
        request=CustomerSerializer(many=True),
        responses={
            200: UpsertResponse,
            **{status: OpenApiResponse(ErrorJson) for status in (400, 401, 403, 411, 413, 429, 503)},
        },
    )
    def post(self, request):
        skip = _flag(request.query_params.get("skipChangeIdentifier"))
        body = request.data
        if isinstance(body, dict):
            body = [body]
        if not isinstance(body, list) or not body:
            raise ValidationFailed("The body must be a list of customers, each with profiles[].", field="body")
        if len(body) > settings.BATCH_MAX_ITEMS:
            raise ValidationFailed(
                f"The body holds {len(body)} customers; at most {settings.BATCH_MAX_ITEMS} are accepted at once.",
                field="body",
                code="batch.too_many",
            )
        items, warnings = [], []
        for index, raw in enumerate(body):
            try:
                text_check(raw, f"[{index}]")
                try:
                    CustomerSerializer(data=raw).is_valid(raise_exception=True)
                except exceptions.ValidationError as exc:
                    field, message, code = first_error(exc.detail, exc.get_codes(), f"[{index}]")
                    raise ValidationFailed(f"{field}: {message}", field=field, code=error_code(field, code)) from None
                parsed = parse_entity(raw, index)
            except DomainError as error:
                items.append(error)
                warnings.append([])
                continue
            items.append(parsed.item)
            warnings.append([entry(code, message, ok=True) for code, message in parsed.warnings])
        results = profiles_write_many(
            items=items,
            change_identifiers=not skip,
            source=SOURCE,
            actor=actor_of(request),
            request_meta=RequestMeta.from_request(request),
        )
        ids = [r.client_id for r in results if r.client_id]
        key = request.auth if isinstance(request.auth, ApiKey) else None
        documents = documents_for(
            ids,
            commerce=commerce_for(profile_ids=ids),
            key=key,
            created={r.client_id for r in results if r.status == "created"},
        )
        response = []
        for result in results:
            errors = []
            if result.error:
                message = result.error["message"]
                field = result.error.get("field")
                if field and field not in message:
                    message = f"[{result.index}].{field}: {message}"
                if ids_ := result.error.get("clientIds"):
                    message += f" (conflicting profiles: {', '.join(map(str, ids_))})"
                errors.append(entry(result.error["code"], message))
            item_warnings = warnings[result.index] + [entry(w["code"], w["message"], ok=True) for w in result.warnings]
            response.append(
                {
                    "entityId": result.client_id,
                    "result": documents.get(result.client_id),
                    "errors": errors,
                    "warnings": item_warnings,
                }
            )
        failures = sum(1 for r in results if r.error)
        return Response({"response": response, "totalCount": len(results), "failureCount": failures})
