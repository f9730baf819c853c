"""Transactions on the Synerise surface: ``POST /v4/transactions`` with one order or a list."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.response import Response

from api.serializers import first_error
from api.synerise.requests import TransactionSerializer
from api.synerise.views import SOURCE
from api.v4 import API_VERSION, ERRORS, PlatformView, validated
from crm.errors import DomainError, ValidationFailed
from profiles.services.transactions import TransactionInput, transactions_record

SERVICE_FIELDS = {"status": "orderStatus"}


def transaction_input(body) -> TransactionInput:
    """A validated order body → TransactionInput."""
    data = validated(TransactionSerializer, body)
    items = []
    for product in data.get("products") or []:
        item = dict(product)
        if product.get("finalUnitPrice") is not None:
            item["price"] = product["finalUnitPrice"]["amount"]
        items.append(item)
    metadata = dict(data.get("metadata") or {})
    extra = {k: data[k] for k in ("revenue", "paymentInfo", "discountAmount", "source") if data.get(k) is not None}
    return TransactionInput(
        order_id=data["orderId"],
        client=data["client"],
        value=data["value"]["amount"],
        currency=data["value"]["currency"],
        status=data.get("orderStatus") or data.get("status") or "completed",
        time=data.get("recordedAt"),
        items=items,
        metadata={**metadata, **extra} if extra else metadata,
    )


class TransactionsView(PlatformView):
    @extend_schema(
        operation_id="transactions_create",
        tags=["Transactions"],
        summary="Record one order or a list (a repeated orderId updates the order); all or nothing",
        parameters=[API_VERSION],
        request=TransactionSerializer,
        responses={202: OpenApiResponse(description="Accepted, no content"), **ERRORS},
    )
    def post(self, request):
        body = request.data
        many = isinstance(body, list)
        bodies = body if many else [body]
        if many and not bodies:
            raise ValidationFailed("The list of transactions is empty.", field="body", code="field.required")
        if len(bodies) > settings.BATCH_MAX_ITEMS:
            raise ValidationFailed(
                f"At most {settings.BATCH_MAX_ITEMS} transactions per request.", field="body", code="too_many"
            )
        try:
            items = []
            for index, item in enumerate(bodies):
                try:
                    items.append(transaction_input(item))
                except exceptions.ValidationError as exc:
                    field, message, code = first_error(exc.detail, exc.get_codes())
                    raise ValidationFailed(message, field=field, code=code, index=index) from None
                except DomainError as exc:
                    exc.details.setdefault("index", index)
                    raise
            transactions_record(items=items, source=SOURCE, actor=self.actor)
        except DomainError as exc:
            where = exc.details.pop("index", 0)
            if exc.field:
                exc.field = SERVICE_FIELDS.get(exc.field, exc.field)
            if many:
                exc.field = f"[{where}].{exc.field}" if exc.field else f"[{where}]"
                exc.details["index"] = where
            raise
        return Response(status=202)
