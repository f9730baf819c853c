"""Transactions: orders recorded set-based, per-profile commerce figures, and RFM segments.

``transactions_record`` writes one order or a list with one INSERT … ON CONFLICT (a repeated order id
updates), one events INSERT, one activity UPDATE and one commerce refresh, whatever the list's size.
Bad input anywhere in a list writes nothing. RFM scores are recomputed over the whole customer base by
the ``rfm_recompute`` background task (``profiles.tasks``), enqueued after each write commits.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction

from crm.errors import DomainError, NotFound, ValidationFailed
from profiles.currencies import CODES
from profiles.merge_registry import rows_move, rows_move_back
from profiles.models import (
    EventAction,
    IdentifierKind,
    Transaction,
    TransactionStatus,
)
from profiles.normalize import identifier_normalize
from profiles.selectors import client_ids_resolve, identifier_owners
from profiles.services.events import NewEvent, events_insert, profiles_activity_advance, time_validate
from profiles.tombstones import tombstone_check

logger = logging.getLogger(__name__)

ORDER_ID_MAX_LENGTH = 128
MAX_VALUE = Decimal("999999999999.99")
# Which identifier of an order's client is tried first.
CLIENT_PRIORITY = [
    "clientId",
    IdentifierKind.CUSTOM_ID,
    IdentifierKind.EMAIL,
    IdentifierKind.PHONE,
    IdentifierKind.UUID,
]
CLIENT_FIELD = {"clientId": "client.id"}


@dataclass
class TransactionInput:
    order_id: str
    client: dict[str, Any]  # kind ("clientId", "customId", "email", "phone", "uuid") -> raw value
    value: Any
    currency: str
    status: str = TransactionStatus.COMPLETED
    time: datetime | None = None
    items: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class TransactionsResult:
    created: int
    updated: int
    profile_ids: list[int]


def _fail(index: int, message: str, field_name: str, code: str = "validation_failed") -> ValidationFailed:
    return ValidationFailed(message, field=field_name, code=code, index=index)


def _decimal(value, *, index: int, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise _fail(index, f"{where} must be a number.", where, "field.type")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise _fail(index, f"{where} must be a number; got {value!r}.", where, "field.type") from None
    if not number.is_finite():
        raise _fail(index, f"{where} must be a finite number.", where, "field.type")
    if number < 0:
        raise _fail(index, f"{where} must not be negative; got {number}.", where, "field.negative")
    if number > MAX_VALUE:
        raise _fail(index, f"{where} is too large.", where, "field.too_large")
    return number


def _clean(item: TransactionInput, index: int) -> dict[str, Any]:
    order_id = item.order_id
    if isinstance(order_id, int) and not isinstance(order_id, bool):
        order_id = str(order_id)
    if not isinstance(order_id, str) or not order_id.strip():
        raise _fail(index, "orderId is required.", "orderId", "field.required")
    order_id = order_id.strip()
    if len(order_id) > ORDER_ID_MAX_LENGTH:
        raise _fail(index, f"orderId is longer than {ORDER_ID_MAX_LENGTH} characters.", "orderId")
    value = _decimal(item.value, index=index, where="value.amount").quantize(Decimal("0.01"))
    currency = item.currency.upper() if isinstance(item.currency, str) else item.currency
    if currency not in CODES:
        raise _fail(index, f"Unknown currency code {item.currency!r}; use ISO 4217 (e.g. PLN, EUR).", "value.currency")
    status = item.status.lower() if isinstance(item.status, str) else item.status
    if status not in TransactionStatus.values:
        raise _fail(index, f"status must be one of {', '.join(TransactionStatus.values)}.", "status", "field.choice")
    try:
        time = time_validate(value=item.time, field_name="recordedAt")
    except ValidationFailed as exc:
        exc.details["index"] = index
        raise
    if not isinstance(item.items, list):
        raise _fail(index, "products must be a list.", "products", "field.type")
    quantity = 0
    items = []
    for n, product in enumerate(item.items):
        where = f"products[{n}]"
        if not isinstance(product, dict):
            raise _fail(index, f"{where} must be an object.", where, "field.type")
        qty = product.get("quantity", 1)
        if isinstance(qty, bool) or not isinstance(qty, int) or qty < 1:
            raise _fail(index, f"{where}.quantity must be a whole number ≥ 1.", f"{where}.quantity", "field.type")
        if product.get("price") is not None:
            _decimal(product["price"], index=index, where=f"{where}.price")
        quantity += qty
        items.append(product)
    if not isinstance(item.metadata, dict):
        raise _fail(index, "metadata must be an object.", "metadata", "field.type")
    if not item.client:
        raise _fail(index, "client needs one of: id, customId, email, phone, uuid.", "client", "identifier.missing")
    return {
        "order_id": order_id,
        "value": value,
        "currency": currency,
        "status": status,
        "time": time,
        "items": items,
        "quantity": quantity or 1,
        "metadata": item.metadata,
    }


def _client_field(kind: str) -> str:
    return CLIENT_FIELD.get(kind, f"client.{kind}")


def _resolve_profiles(clients: list[dict[str, Any]]) -> list[int]:
    """The profile of each order, with two queries for the whole list; an unknown client is a NotFound."""
    wanted_ids: set[int] = set()
    pairs: set[tuple[str, str]] = set()
    normalized: list[dict[str, Any]] = []
    for index, client in enumerate(clients):
        clean = {}
        for kind, raw in client.items():
            try:
                if kind == "clientId":
                    if isinstance(raw, bool):
                        raise ValueError
                    clean[kind] = int(raw)
                    wanted_ids.add(clean[kind])
                elif kind in CLIENT_PRIORITY:
                    clean[kind] = identifier_normalize(kind, raw)
                    pairs.add((kind, clean[kind]))
                else:
                    raise _fail(index, f"Unknown client key '{kind}'.", f"client.{kind}", "field.unknown")
            except ValueError:
                raise _fail(index, "client.id must be a number.", "client.id", "field.type") from None
            except DomainError as exc:
                exc.field = _client_field(kind)
                exc.details["index"] = index
                raise
        normalized.append(clean)
    by_id = client_ids_resolve(client_ids=wanted_ids)
    owners = identifier_owners(pairs=pairs)
    result = []
    for index, clean in enumerate(normalized):
        found = None
        for kind in CLIENT_PRIORITY:
            if kind not in clean:
                continue
            found = by_id.get(clean[kind]) if kind == "clientId" else owners.get((kind, clean[kind]))
            if found is not None:
                break
        if found is None:
            kind = next(k for k in CLIENT_PRIORITY if k in clean)
            try:  # an erased clientId or uuid is Gone, not unknown (asked only on this miss)
                tombstone_check(kind, clean[kind], field=_client_field(kind))
            except DomainError as exc:
                exc.details["index"] = index
                raise
            raise NotFound(
                f"No profile with {kind} '{client_value(client=clients[index], kind=kind)}'.",
                field=_client_field(kind),
                code="profile.not_found",
                index=index,
            )
        result.append(found)
    return result


def client_value(*, client: dict[str, Any], kind: str):
    return client.get(kind)


def _json(value) -> str:
    return json.dumps(value, cls=DjangoJSONEncoder, separators=(",", ":"))


def transactions_record(*, items: list[TransactionInput], source: str, actor: str = "") -> TransactionsResult:
    """Record orders (a repeated order id updates it); all or nothing. Errors carry the item's ``index``."""
    cleaned = [_clean(item, index) for index, item in enumerate(items)]
    if not cleaned:
        raise ValidationFailed("No transactions to record.", field="body", code="field.required")
    profile_ids = _resolve_profiles([item.client for item in items])
    # One row per order id, the last one sent wins (ON CONFLICT cannot touch a row twice in one statement).
    latest: dict[str, tuple[dict, int]] = {}
    for row, profile_id in zip(cleaned, profile_ids, strict=True):
        latest[row["order_id"]] = (row, profile_id)
    rows = list(latest.values())
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT order_id, profile_id, status FROM profiles_transaction WHERE order_id = ANY(%s) FOR UPDATE",
                [list(latest)],
            )
            before = {order_id: (pid, status) for order_id, pid, status in cursor.fetchall()}
            cursor.execute(
                """
                INSERT INTO profiles_transaction (order_id, profile_id, value, currency, status, time, items,
                                                  quantity, metadata, source, created_at, updated_at)
                SELECT o, p, v, c, s, t, i::jsonb, q, m::jsonb, %s, now(), now()
                FROM unnest(%s::text[], %s::bigint[], %s::numeric[], %s::text[], %s::text[], %s::timestamptz[],
                            %s::text[], %s::int[], %s::text[]) AS u(o, p, v, c, s, t, i, q, m)
                ON CONFLICT (order_id) DO UPDATE SET
                    profile_id = EXCLUDED.profile_id, value = EXCLUDED.value, currency = EXCLUDED.currency,
                    status = EXCLUDED.status, time = EXCLUDED.time, items = EXCLUDED.items,
                    quantity = EXCLUDED.quantity, metadata = EXCLUDED.metadata, source = EXCLUDED.source,
                    updated_at = now()
                RETURNING order_id, (xmax = 0) AS inserted
                """,
                [
                    source[:32],
                    [r["order_id"] for r, _ in rows],
                    [pid for _, pid in rows],
                    [r["value"] for r, _ in rows],
                    [r["currency"] for r, _ in rows],
                    [r["status"] for r, _ in rows],
                    [r["time"] for r, _ in rows],
                    [_json(r["items"]) for r, _ in rows],
                    [r["quantity"] for r, _ in rows],
                    [_json(r["metadata"]) for r, _ in rows],
                ],
            )
            inserted = dict(cursor.fetchall())
        events = []
        activity: dict[int, datetime] = {}
        for row, pid in rows:
            old = before.get(row["order_id"])
            if inserted.get(row["order_id"]) or old is None or old[1] != row["status"]:
                returned = row["status"] == TransactionStatus.RETURNED
                events.append(
                    NewEvent(
                        profile_id=pid,
                        action=EventAction.TRANSACTION_RETURN if returned else EventAction.TRANSACTION_CHARGE,
                        label=row["order_id"],
                        time=row["time"],
                        params={"orderId": row["order_id"], "value": row["value"], "currency": row["currency"]},
                        source=source,
                        actor=actor,
                        is_system=False,
                    )
                )
            activity[pid] = max(activity.get(pid, row["time"]), row["time"])
        events_insert(rows=events)
        profiles_activity_advance(activity=activity)
        touched = sorted({pid for _, pid in rows} | {pid for pid, _ in before.values()})
        commerce_refresh(profile_ids=touched)
        transaction.on_commit(rfm_enqueue)
    created = sum(1 for v in inserted.values() if v)
    return TransactionsResult(created=created, updated=len(inserted) - created, profile_ids=touched)


# --- commerce figures ---------------------------------------------------------------------------------


def commerce_refresh(*, profile_ids: list[int]) -> None:
    """Recompute the commerce figures of these profiles from their orders: one upsert and one delete."""
    if not profile_ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH agg AS (
                SELECT profile_id,
                       coalesce(sum(value) FILTER (WHERE status = 'completed'), 0) AS spent,
                       count(*) FILTER (WHERE status = 'completed') AS orders,
                       count(*) FILTER (WHERE status = 'returned') AS returns,
                       coalesce(sum(quantity) FILTER (WHERE status = 'completed'), 0) AS units,
                       min(time) FILTER (WHERE status = 'completed') AS first_order,
                       max(time) FILTER (WHERE status = 'completed') AS last_order,
                       (array_agg(currency ORDER BY time DESC, id DESC))[1] AS currency
                FROM profiles_transaction WHERE profile_id = ANY(%(ids)s::bigint[])
                GROUP BY profile_id
            )
            INSERT INTO profiles_profilecommerce AS c (
                profile_id, total_spent, total_orders, total_returns, avg_order, avg_price_point, first_order,
                last_order, avg_days_between_orders, currency, rfm_segment, updated_at)
            SELECT profile_id, spent, orders, returns,
                   CASE WHEN orders > 0 THEN round(spent / orders, 2) ELSE 0 END,
                   CASE WHEN units > 0 THEN round(spent / units, 2) ELSE 0 END,
                   first_order, last_order,
                   CASE WHEN orders > 1
                        THEN extract(epoch FROM last_order - first_order) / 86400.0 / (orders - 1) END,
                   currency, '', now()
            FROM agg
            ON CONFLICT (profile_id) DO UPDATE SET
                total_spent = EXCLUDED.total_spent, total_orders = EXCLUDED.total_orders,
                total_returns = EXCLUDED.total_returns, avg_order = EXCLUDED.avg_order,
                avg_price_point = EXCLUDED.avg_price_point, first_order = EXCLUDED.first_order,
                last_order = EXCLUDED.last_order, avg_days_between_orders = EXCLUDED.avg_days_between_orders,
                currency = EXCLUDED.currency, updated_at = now()
            """,
            {"ids": list(profile_ids)},
        )
        cursor.execute(
            """
            DELETE FROM profiles_profilecommerce AS c
            WHERE c.profile_id = ANY(%s::bigint[])
              AND NOT EXISTS (SELECT 1 FROM profiles_transaction AS t WHERE t.profile_id = c.profile_id)
            """,
            [list(profile_ids)],
        )


# --- RFM ------------------------------------------------------------------------------------------------

# (segment, recency scores, frequency-monetary scores): the classic grid, every (R, FM) pair in one segment.
RFM_SEGMENTS = [
    ("Champions", (5,), (4, 5)),
    ("Loyal", (3, 4), (4, 5)),
    ("Potential loyalists", (4, 5), (2, 3)),
    ("New customers", (5,), (1,)),
    ("Promising", (4,), (1,)),
    ("Need attention", (3,), (3,)),
    ("About to sleep", (3,), (1, 2)),
    ("At risk", (1, 2), (3, 4)),
    ("Can't lose them", (1, 2), (5,)),
    ("Hibernating", (2,), (1, 2)),
    ("Lost", (1,), (1, 2)),
]


def rfm_fm(*, frequency: int, monetary: int) -> int:
    """Frequency and monetary scores folded into one (the mean, rounded half up)."""
    return (frequency + monetary + 1) // 2


def rfm_segment(*, recency: int, frequency: int, monetary: int) -> str:
    fm = rfm_fm(frequency=frequency, monetary=monetary)
    for name, rs, fms in RFM_SEGMENTS:
        if recency in rs and fm in fms:
            return name
    raise AssertionError(f"RFM grid has a hole at R={recency} FM={fm}")


def _segment_case_sql() -> str:
    def sql_list(values) -> str:
        return ", ".join(map(str, values))

    def literal(text: str) -> str:
        return "'" + text.replace("'", "''") + "'"

    whens = " ".join(
        f"WHEN r IN ({sql_list(rs)}) AND fm IN ({sql_list(fms)}) THEN {literal(name)}" for name, rs, fms in RFM_SEGMENTS
    )
    return f"CASE {whens} ELSE '' END"


def rfm_recompute_all() -> int:
    """Score every customer with a completed order 1–5 on recency, frequency and monetary value against the
    whole base (``cume_dist``, so equal figures get equal scores) and name the segment; one UPDATE.
    Returns the number of profiles scored."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH scored AS (
                SELECT profile_id,
                       ceil(cume_dist() OVER (ORDER BY last_order) * 5)::int AS r,
                       ceil(cume_dist() OVER (ORDER BY total_orders) * 5)::int AS f,
                       ceil(cume_dist() OVER (ORDER BY total_spent) * 5)::int AS m
                FROM profiles_profilecommerce WHERE total_orders > 0
            ), named AS (
                SELECT profile_id, r, f, m, (f + m + 1) / 2 AS fm FROM scored
            )
            UPDATE profiles_profilecommerce AS c
            SET rfm_recency = n.r, rfm_frequency = n.f, rfm_monetary = n.m,
                rfm_segment = {_segment_case_sql()}, rfm_computed_at = now()
            FROM named AS n WHERE c.profile_id = n.profile_id
            """  # noqa: S608 (the CASE is built from the constant grid above)
        )
        scored = cursor.rowcount
        cursor.execute(
            """
            UPDATE profiles_profilecommerce SET rfm_recency = NULL, rfm_frequency = NULL, rfm_monetary = NULL,
                   rfm_segment = '', rfm_computed_at = now()
            WHERE total_orders = 0 AND (rfm_segment <> '' OR rfm_computed_at IS NULL)
            """
        )
    return scored


def rfm_enqueue() -> None:
    """Queue an RFM recompute; a failing queue must not fail the write that asked for it."""
    from profiles.tasks import rfm_recompute

    try:
        rfm_recompute.enqueue()
    except Exception:
        logger.exception("could not enqueue rfm_recompute")


# --- merge steps (profiles.merge_registry) --------------------------------------------------


def transactions_merge_step(*, ctx) -> dict:
    moved = rows_move(Transaction, from_profile_id=ctx.merged.pk, to_profile_id=ctx.survivor.pk)
    commerce_refresh(profile_ids=[ctx.survivor.pk, ctx.merged.pk])
    if moved:
        transaction.on_commit(rfm_enqueue)
    return {"ids": moved}


def transactions_unmerge_step(*, ctx) -> list[str]:
    ids = (ctx.data or {}).get("ids", [])
    notes = rows_move_back(Transaction, ids=ids, from_profile_id=ctx.survivor.pk, to_profile_id=ctx.restored.pk)
    commerce_refresh(profile_ids=[ctx.survivor.pk, ctx.restored.pk])
    if ids:
        transaction.on_commit(rfm_enqueue)
    return notes
