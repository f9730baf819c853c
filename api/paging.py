"""Paging, both styles the API speaks, defined once: ``pageIndex``/``pageSize`` pages of a list (profiles,
segments; the total in headers) and the ``limit``/``cursor`` pages of logs (a timeline, a webhook's messages),
answered as ``{"data": […], "nextCursor": …}``. The cursor's format is ``crm.paging``'s, which the selectors
that page a log use."""

from __future__ import annotations

from django.conf import settings
from django.db.models import F
from drf_spectacular.utils import OpenApiParameter
from rest_framework.response import Response

from crm.errors import ValidationFailed
from profiles.documents import profile_documents_by_ids
from profiles.fields import SORT_COLUMNS

SORT_FIELDS = SORT_COLUMNS  # sortBy's API name → column
# sortBy's description in the API schema.
SORT_BY_HELP = (
    f"{', '.join(list(SORT_FIELDS)[:-1])} or {list(SORT_FIELDS)[-1]}; '-' prefix or ':desc' suffix for descending"
)


DEFAULT_PAGE_SIZE = 100


MAX_PAGE_SIZE = settings.LIST_MAX_PAGE_SIZE


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
    page_index, page_size = page_window(params, max_index=settings.LIST_MAX_RESULTS)
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


DEFAULT_CURSOR_LIMIT = 50

PAGE_PARAMETERS = [
    OpenApiParameter("pageIndex", int, description="0-based page number"),
    OpenApiParameter("pageSize", int, description=f"1–{MAX_PAGE_SIZE}, default {DEFAULT_PAGE_SIZE}"),
]
CURSOR_PARAMETERS = [
    OpenApiParameter("limit", int, description=f"1–{settings.TIMELINE_MAX_PAGE_SIZE}, default {DEFAULT_CURSOR_LIMIT}"),
    OpenApiParameter("cursor", str, description="nextCursor of the previous page"),
]


def page_window(params, *, max_index: int) -> tuple[int, int]:
    """``(pageIndex, pageSize)`` from the query, checked (``pageIndex`` at most ``max_index``)."""
    size = int_param(params, "pageSize", DEFAULT_PAGE_SIZE, low=1, high=MAX_PAGE_SIZE)
    return int_param(params, "pageIndex", 0, low=0, high=max_index), size


def cursor_params(params) -> dict:
    """The ``cursor`` and ``limit`` a log's selector takes, from the query."""
    return {
        "cursor": params.get("cursor") or None,
        "limit": int_param(params, "limit", DEFAULT_CURSOR_LIMIT, low=1, high=settings.TIMELINE_MAX_PAGE_SIZE),
    }


def cursor_page_response(*, data: list, next_cursor: str | None) -> Response:
    return Response({"data": data, "nextCursor": next_cursor})
