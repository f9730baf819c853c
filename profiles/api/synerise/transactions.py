"""Transactions on the Synerise surface (F10): ``POST /v4/transactions`` with one order or a list."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from crm.errors import DomainError, ValidationFailed
from profiles.api.synerise.events import parse_client, parse_time
from profiles.api.synerise.views import API_VERSION, ERRORS, SOURCE, SyneriseView
from profiles.services.transactions import TransactionInput, transactions_record

TRANSACTION_KEYS = {
    "client",
    "orderId",
    "orderStatus",
    "status",
    "value",
    "revenue",
    "products",
    "recordedAt",
    "source",
    "metadata",
    "paymentInfo",
    "discountAmount",
}
SERVICE_FIELDS = {"status": "orderStatus"}


def _money(value, *, where: str) -> tuple:
    if not isinstance(value, dict):
        raise ValidationFailed(f"{where} must be an object with amount and currency.", field=where, code="field.type")
    if "amount" not in value:
        raise ValidationFailed(f"{where}.amount is required.", field=f"{where}.amount", code="field.required")
    if not isinstance(value.get("currency"), str):
        raise ValidationFailed(f"{where}.currency is required.", field=f"{where}.currency", code="field.required")
    return value["amount"], value["currency"]


def parse_transaction(body) -> TransactionInput:
    if not isinstance(body, dict):
        raise ValidationFailed("A transaction must be a JSON object.", field="body", code="field.type")
    unknown = set(body) - TRANSACTION_KEYS
    if unknown:
        name = sorted(unknown)[0]
        raise ValidationFailed(f"Unknown field '{name}'.", field=name, code="field.unknown")
    for required in ("client", "orderId", "value"):
        if body.get(required) is None:
            raise ValidationFailed(f"{required} is required.", field=required, code="field.required")
    amount, currency = _money(body["value"], where="value")
    products = body.get("products") or []
    if not isinstance(products, list):
        raise ValidationFailed("products must be a list.", field="products", code="field.type")
    items = []
    for n, product in enumerate(products):
        if not isinstance(product, dict):
            raise ValidationFailed(f"products[{n}] must be an object.", field=f"products[{n}]", code="field.type")
        item = dict(product)
        if product.get("finalUnitPrice") is not None:
            item["price"], _ = _money(product["finalUnitPrice"], where=f"products[{n}].finalUnitPrice")
        items.append(item)
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ValidationFailed("metadata must be an object.", field="metadata", code="field.type")
    extra = {k: body[k] for k in ("revenue", "paymentInfo", "discountAmount", "source") if body.get(k) is not None}
    return TransactionInput(
        order_id=body["orderId"],
        client=parse_client(body["client"]),
        value=amount,
        currency=currency,
        status=body.get("orderStatus") or body.get("status") or "completed",
        time=parse_time(body.get("recordedAt"), where="recordedAt"),
        items=items,
        metadata={**metadata, **extra} if extra else metadata,
    )


class TransactionsView(SyneriseView):
    @extend_schema(
        operation_id="transactions_create",
        tags=["Transactions"],
        summary="Record one order or a list (a repeated orderId updates the order); all or nothing",
        parameters=[API_VERSION],
        request=inline_serializer(
            "SyneriseTransaction",
            {
                "client": serializers.DictField(help_text="one of id, uuid, email, customId, phone"),
                "orderId": serializers.CharField(),
                "orderStatus": serializers.ChoiceField(choices=["completed", "returned"], required=False),
                "value": serializers.DictField(help_text='{"amount": 99.5, "currency": "PLN"}'),
                "products": serializers.ListField(child=serializers.DictField(), required=False),
                "recordedAt": serializers.DateTimeField(required=False),
                "metadata": serializers.DictField(required=False),
            },
        ),
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
                    items.append(parse_transaction(item))
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
