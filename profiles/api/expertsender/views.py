"""ExpertSender ECDP-compatible customer endpoints (seed 004): ``POST /customers`` and four GETs."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from consents.context import RequestMeta
from crm.actors import actor_of
from crm.api import ApiView
from crm.errors import NotFound, ValidationFailed
from crm.parsers import text_check
from profiles.api.expertsender.errors import PROBLEM_JSON, problem_body, render_error
from profiles.api.expertsender.serializers import (
    MATCH_BY,
    MODES,
    consents_of,
    customer_document,
    error_lines,
    parse_enum,
    parse_item,
)
from profiles.selectors import profile_commerce
from profiles.services import profile_lookup
from profiles.services.attributes import AttributeCatalog
from profiles.services.surfaces import profiles_write_many

SOURCE = "api"
TAGS = ["ExpertSender ECDP"]
LOOKUPS = {"id": "clientId", "email": "email", "phone": "phone", "crmId": "customId"}

Problem = inline_serializer(
    "ExpertSenderProblem",
    {
        "type": serializers.CharField(),
        "title": serializers.CharField(),
        "status": serializers.IntegerField(),
        "detail": serializers.CharField(),
        "instance": serializers.CharField(),
        "errors": serializers.ListField(child=serializers.CharField(), required=False, help_text="On 400 only."),
        "code": serializers.CharField(help_text="Our stable error code (an RFC 7807 extension member)."),
        "results": serializers.ListField(
            child=serializers.DictField(), required=False, help_text="Per item: index, id, status, errors."
        ),
    },
)


_CustomAttribute = type(
    inline_serializer(
        "ExpertSenderCustomAttribute",
        {"name": serializers.CharField(max_length=256), "value": serializers.CharField(allow_null=True)},
    )
)


def CustomAttribute(**kwargs):
    return _CustomAttribute(**kwargs)


_Consent = type(
    inline_serializer(
        "ExpertSenderConsent",
        {
            "id": serializers.IntegerField(help_text="The agreement's id (see the admin's agreements page)."),
            "value": serializers.ChoiceField(choices=["True", "False", "AwaitingConfirmation"]),
        },
    )
)


def Consent(**kwargs):
    return _Consent(**kwargs)


_CustomerWrite = type(
    inline_serializer(
        "ExpertSenderCustomerWrite",
        {
            "email": serializers.CharField(max_length=320, required=False),
            "phone": serializers.CharField(max_length=20, required=False),
            "crmId": serializers.CharField(max_length=128, required=False, help_text="Our customId."),
            "visitorId": serializers.CharField(max_length=38, required=False, help_text="A uuid of the visitor."),
            "firstName": serializers.CharField(max_length=256, required=False),
            "lastName": serializers.CharField(max_length=256, required=False),
            "dateOfBirth": serializers.DateTimeField(required=False, help_text="Stored as a date (UTC)."),
            "gender": serializers.ChoiceField(choices=["Male", "Female", "NotSpecified"], required=False),
            "customAttributes": CustomAttribute(many=True, required=False),
            "consentsData": inline_serializer(
                "ExpertSenderConsentsData",
                {
                    "consents": Consent(many=True),
                    "force": serializers.BooleanField(required=False),
                    "confirmationMessageId": serializers.IntegerField(required=False, help_text="Accepted, not used."),
                },
                required=False,
            ),
        },
    )
)


def CustomerWrite(**kwargs):
    return _CustomerWrite(**kwargs)


CustomersRequest = inline_serializer(
    "ExpertSenderCustomersRequest",
    {
        "mode": serializers.ChoiceField(choices=["Add", "Update", "AddOrUpdate"]),
        "matchBy": serializers.ChoiceField(choices=["Email", "PhoneNumber", "CrmId", "GUID", "VisitorId"]),
        "data": CustomerWrite(many=True),
    },
)
CustomersCreated = inline_serializer(
    "ExpertSenderCustomersCreated",
    {"data": serializers.ListField(child=serializers.DictField(), help_text="Per item: index, id, status.")},
)
Customer = inline_serializer(
    "ExpertSenderCustomer",
    {
        "status": serializers.IntegerField(),
        "data": inline_serializer(
            "ExpertSenderCustomerData",
            {
                "id": serializers.IntegerField(),
                "email": serializers.CharField(allow_null=True),
                "phone": serializers.CharField(allow_null=True),
                "crmId": serializers.CharField(allow_null=True),
                "visitorId": serializers.CharField(),
                "firstName": serializers.CharField(allow_null=True),
                "lastName": serializers.CharField(allow_null=True),
                "dateOfBirth": serializers.DateTimeField(allow_null=True),
                "gender": serializers.ChoiceField(choices=["Male", "Female", "NotSpecified"]),
                "rfmSegment": serializers.CharField(allow_null=True),
                "totalSpent": serializers.FloatField(),
                "totalOrders": serializers.IntegerField(),
                "totalOrderReturns": serializers.IntegerField(),
                "avgOrder": serializers.FloatField(),
                "avgPricePoint": serializers.FloatField(),
                "lastOrder": serializers.DateTimeField(allow_null=True),
                "avgTimeBetweenOrdersInDays": serializers.FloatField(),
                "currencySymbol": serializers.CharField(allow_null=True),
                "customAttributes": CustomAttribute(many=True),
                "consentsData": inline_serializer("ExpertSenderConsentsRead", {"consents": Consent(many=True)}),
            },
        ),
    },
)


def problems(*statuses: int) -> dict:
    """Error responses as sent: RFC 7807 bodies with ``Content-Type: application/problem+json``."""
    return {(status, PROBLEM_JSON): OpenApiResponse(Problem) for status in statuses}


class ExpertSenderView(ApiView):
    error_renderer = staticmethod(render_error)


class CustomersView(ExpertSenderView):
    per_item_text_check = True

    @extend_schema(
        operation_id="expertsender_customers_post",
        tags=TAGS,
        summary="Add, update or upsert customers (ExpertSender ECDP)",
        description=(
            "Seed 004's `POST /customers`. Authenticate with `x-api-key`. `mode`: `Add` creates and fails for a "
            "customer any of whose identifiers is already known; `Update` changes the customer that `matchBy` "
            "names and fails when there is none (and when another identifier belongs to someone else); "
            "`AddOrUpdate` upserts through identity resolution (F5). `matchBy` names the field every item must "
            "carry (`GUID` and `VisitorId` both mean `visitorId`). `crmId` is our customId, `visitorId` a uuid, "
            "`customAttributes` our custom attributes, `consentsData.consents[].id` an agreement id "
            "(`AwaitingConfirmation` e-mails a double opt-in link; `force` sends it again). Each item is saved "
            "or not as a whole: 201 when all were saved, otherwise 400 listing every failed item in `errors` "
            "(the others are saved; `results` says which)."
        ),
        request=CustomersRequest,
        responses={
            201: CustomersCreated,
            **problems(400, 401, 413, 429, 503),
        },
    )
    def post(self, request):
        body = request.data
        if not isinstance(body, dict):
            raise ValidationFailed("The body must be a JSON object with mode, matchBy and data.", field="body")
        text_check({key: value for key, value in body.items() if key != "data"})
        mode = parse_enum(body.get("mode"), MODES, field="mode", shown="Add, Update, AddOrUpdate")
        match_kind = parse_enum(
            body.get("matchBy"), MATCH_BY, field="matchBy", shown="Email, PhoneNumber, CrmId, GUID, VisitorId"
        )
        data = body.get("data")
        if not isinstance(data, list):
            raise ValidationFailed("data must be a list of customers.", field="data", code="field.type")
        if not data:
            raise ValidationFailed("data must hold at least one customer.", field="data", code="field.empty")
        if len(data) > settings.BATCH_MAX_ITEMS:
            raise ValidationFailed(
                f"data holds {len(data)} customers; at most {settings.BATCH_MAX_ITEMS} are accepted at once.",
                field="data",
                code="batch.too_many",
            )
        types = {key: d.type for key, d in AttributeCatalog.load().by_key.items()}
        items = []
        for index, raw in enumerate(data):
            try:
                text_check(raw, f"data[{index}]")
                items.append(parse_item(raw, index, types=types))
            except ValidationFailed as error:
                items.append(error)
        # "400: The request was not processed" (seed 004): one bad customer and none is saved.
        with transaction.atomic():
            results = profiles_write_many(
                items=items,
                mode=mode,
                match_kind=match_kind,
                source=SOURCE,
                actor=actor_of(request),
                request_meta=RequestMeta.from_request(request),
            )
            failed = [r for r in results if r.error]
            if failed:
                transaction.set_rollback(True)
        if not failed:
            summary = [{"index": r.index, "id": r.client_id, "status": r.status} for r in results]
            return Response({"data": summary}, status=201)
        summary = [{"index": r.index, "id": None, "status": "notSaved"} for r in results]
        errors, first_code = [], failed[0].error["code"]
        for result in failed:
            lines = error_lines(result.index, result.error, data[result.index])
            errors.extend(lines)
            summary[result.index]["status"] = "failed"
            summary[result.index]["errors"] = lines
            summary[result.index]["code"] = result.error["code"]
        detail = (
            errors[0]
            if len(results) == 1
            else f"{len(failed)} of {len(results)} customers are invalid; no customer was saved."
        )
        body = problem_body(
            status=400, detail=detail, instance=request.path, errors=errors, code=first_code, results=summary
        )
        return Response(body, status=400, content_type=PROBLEM_JSON)


class CustomerView(ExpertSenderView):
    @extend_schema(
        tags=TAGS,
        summary="Get a customer by id (our clientId), email, phone or crmId (ExpertSender ECDP)",
        description=(
            "Seed 004's GET methods. The body carries the commerce figures and RFM segment of the transactions "
            "work; `customAttributes` are all custom attributes (non-strings as JSON text); `consentsData` every "
            "decision on an active agreement. `{value}` written with the braces of the seed's examples works too. "
            "An unknown or malformed value is a 404."
        ),
        parameters=[OpenApiParameter("value", str, OpenApiParameter.PATH)],
        responses={200: Customer, **problems(400, 401, 404, 429, 503)},
    )
    def get(self, request, kind: str, value: str):
        if len(value) > 2 and value.startswith("{") and value.endswith("}"):
            value = value[1:-1]  # the seed writes its examples as /customers/id/{12}
        try:
            profile = profile_lookup(kind=LOOKUPS[kind], value=value)
        except ValidationFailed:
            raise NotFound(f"No customer with {kind} '{value}'.", field=kind, code="profile.not_found") from None
        document = customer_document(
            profile, commerce=profile_commerce(profile_id=profile.pk), consents=consents_of(profile.pk)
        )
        return Response(document)
