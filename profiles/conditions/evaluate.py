"""The compiled SQL's meaning, read in Python: for values the database has no row to compare (a profile without
orders). A comparison with a missing value (None, empty text) is false, whatever the op; ``exists`` alone asks
whether there is a value."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from profiles.conditions.nodes import CommerceCond
from profiles.fields import DATE, TEXT


def as_decimal(value):
    """Numbers as the decimals money is kept in: 99.99 means the decimal 99.99, not the nearest binary float."""
    if isinstance(value, tuple):
        return tuple(as_decimal(v) for v in value)
    if isinstance(value, float | int) and not isinstance(value, bool):
        return Decimal(str(value))
    return value


def value_matches(type_: str, op: str, wanted, actual, *, now: datetime) -> bool:
    """Whether one value meets ``op wanted`` as the compiled condition decides it."""
    present = actual is not None and actual != ""
    if isinstance(actual, Decimal):
        wanted = as_decimal(wanted)
    if type_ == TEXT and op != "exists":
        actual = actual.lower() if isinstance(actual, str) else actual
    if op == "exists":
        return present if wanted else not present
    if not present:
        return False
    if op == "eq":
        return actual == wanted
    if op == "not":
        return actual != wanted
    if op == "gt":
        return actual > wanted
    if op == "gte":
        return actual >= wanted
    if op == "lt":
        return actual < wanted
    if op == "lte":
        return actual <= wanted
    if op == "between":
        return wanted[0] <= actual <= wanted[1]
    if op == "in":
        return actual in wanted
    if op == "contains":
        return wanted in actual
    if op == "startsWith":
        return actual.startswith(wanted)
    if op == "inLastDays":
        since = now - timedelta(days=wanted)
        return actual >= (since.date() if type_ == DATE else since)
    raise AssertionError(op)


def commerce_default_matches(node: CommerceCond, *, now: datetime) -> bool:
    """Whether a profile without any order (no commerce row) matches a commerce condition."""
    return value_matches(node.type, node.op, node.value, node.default, now=now)
