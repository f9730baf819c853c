"""ExpertSender ECDP-compatible customer endpoints (ExpertSender's documentation): ``POST /customers`` and four GETs."""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.response import Response

from api.base import ApiView
from api.expertsender.errors import problem_body, render_error
from api.expertsender.requests import (
    ConsentSerializer,
    CustomAttributeSerializer,
    CustomersRequestSerializer,
)
from api.expertsender.translation import consents_of, customer_document, error_lines, write_item
from api.parsers import text_check
from api.problems import PROBLEM_JSON, problem_responses
from api.serializers import all_errors
from consents.context import RequestMeta
from crm.actors import actor_of
from crm.errors import NotFound, ValidationFailed
from crm.lock_waits import Busy
from crm.replica import replica_reads
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
                "customAttributes": CustomAttributeSerializer(many=True),
                "consentsData": inline_serializer(
                    "ExpertSenderConsentsRead", {"consents": ConsentSerializer(many=True)}
                ),
            },
        ),
    },
)


def problems(*statuses: int) -> dict:
    return problem_responses(*statuses, body=Problem)


class ExpertSenderView(ApiView):
    error_renderer = staticmethod(render_error)


class CustomersView(ExpertSenderView):
    per_item_text_check = True

    @extend_schema(
        operation_id="expertsender_customers_post",
        tags=TAGS,
        summary="Add, update or upsert customers (ExpertSender ECDP)",
        description=(
            "ExpertSender's `POST /customers`. Authenticate with `x-api-key`. `mode`: `Add` creates and fails for a "
            "customer any of whose identifiers is already known; `Update` changes the customer that `matchBy` "
            "names and fails when there is none (and when another identifier belongs to someone else); "
            "`AddOrUpdate` upserts through identity resolution. `matchBy` names the field every item must "
            "carry (`GUID` and `VisitorId` both mean `visitorId`). `crmId` is our customId, `visitorId` a uuid, "
            "`customAttributes` our custom attributes, `consentsData.consents[].id` an agreement id "
            "(`AwaitingConfirmation` e-mails a double opt-in link; `force` sends it again). Each item is saved "
            "or not as a whole: 201 when all were saved, otherwise 400 listing every failed item in `errors` "
            "(the others are saved; `results` says which)."
        ),
        request=CustomersRequestSerializer,
        responses={
            201: CustomersCreated,
            **problems(400, 401, 413, 429, 503),
        },
    )
    def post(self, request):
        body = request.data
        if isinstance(body, dict):
            text_check({key: value for key, value in body.items() if key != "data"})
        envelope = CustomersRequestSerializer(data=body)
        envelope.is_valid(raise_exception=True)
        mode, match_kind = envelope.validated_data["mode"], envelope.validated_data["matchBy"]
        data = body["data"]
        types = {key: d.type for key, d in AttributeCatalog.load().by_key.items()}
        items = []
        for index, (raw, outcome) in enumerate(zip(data, envelope.validated_data["data"], strict=True)):
            try:
                text_check(raw, f"data[{index}]")
                if isinstance(outcome, exceptions.ValidationError):
                    errors = all_errors(outcome.detail, outcome.get_codes(), f"data[{index}]")
                    field, message, code = errors[0]
                    raise ValidationFailed(message, field=field, code=code, errors=[f"{f}: {m}" for f, m, _ in errors])
                items.append(write_item(outcome, types=types))
            except ValidationFailed as error:
                items.append(error)
        # "400: The request was not processed" (ExpertSender's documentation): one bad customer and none is saved.
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
        if any(r.error["code"] == Busy.code for r in failed):
            raise Busy()  # not the request's fault: nothing saved, 503 with Retry-After
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
            "ExpertSender's GET methods. The body carries the commerce figures and RFM segment of the transactions "
            "work; `customAttributes` are all custom attributes (non-strings as JSON text); `consentsData` every "
            "decision on an active agreement. `{value}` written with the braces of the seed's examples works too. "
            "An unknown or malformed value is a 404."
        ),
        parameters=[OpenApiParameter("value", str, OpenApiParameter.PATH)],
        responses={200: Customer, **problems(400, 401, 404, 429, 503)},
    )
    @replica_reads()
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
