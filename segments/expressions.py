"""Admin-defined expressions: figures computed per profile, shown in the card's right column and, on request,
in the profile's API document (``?expand=expressions``).

An expression reads the profile's custom attributes (by name), its native fields (``firstName``, ``city``…:
``profiles.fields.EXPRESSION_COLUMNS``), its commerce figures (``totalSpent``, ``avgPricePoint``, ``lastOrder``…:
``profiles.fields.COMMERCE_FIGURES``, and ``daysSinceLastOrder``) and two aggregates: ``events("page.visit", 30)``
(how many such events in the last 30 days; days optional) and ``daysSinceLastEvent``. Functions: ``max``, ``min``,
``abs``, ``round``, ``int``, ``float``, ``str``, ``len``. It is evaluated by simpleeval, which walks a parsed
expression and allows no attribute access, imports, comprehensions or assignments; nothing here ever calls ``eval``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import simpleeval
from django.db.models import Count, Max
from django.utils import timezone

from crm.errors import ValidationFailed
from profiles.fields import COMMERCE_FIGURES, EXPRESSION_COLUMNS
from profiles.models import AttributeDefinition, Event
from profiles.selectors import profile_commerce
from segments.models import Expression, ExpressionFormat, ExpressionType

MAX_EXPRESSION_LENGTH = 1000
MAX_WINDOW_DAYS = 36_600
FUNCTIONS = {"max": max, "min": min, "abs": abs, "round": round, "int": int, "float": float, "str": str, "len": len}


class _Evaluator(simpleeval.SimpleEval):
    """simpleeval with our names and functions; strings and powers are bounded by simpleeval itself."""


def expression_validate(text: str) -> None:
    """Refuse text that is not an expression simpleeval accepts (or uses names and calls we do not offer)."""
    if not isinstance(text, str) or not text.strip():
        raise ValidationFailed("An expression is required.", field="expression")
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ValidationFailed(f"An expression has at most {MAX_EXPRESSION_LENGTH} characters.", field="expression")
    evaluator = _Evaluator(functions={**FUNCTIONS, "events": lambda action, days=None: 0}, names=_AnyName())
    try:
        evaluator.eval(text)
    except simpleeval.InvalidExpression as exc:
        raise ValidationFailed(f"Not allowed in an expression: {exc}", field="expression") from None
    except SyntaxError as exc:
        raise ValidationFailed(f"Not a valid expression: {exc.msg}.", field="expression") from None
    except Exception:  # noqa: S110 - division by zero and type errors depend on the data, not the text
        pass


class _AnyName(dict):
    """Every name resolves (to 0) while validating: unknown attributes are not an error, only the syntax is."""

    def __contains__(self, key) -> bool:
        return True

    def __getitem__(self, key):
        return 0


@dataclass
class ExpressionValue:
    name: str
    label: str
    value: Any
    display: str
    error: str = ""


def _context(profile, commerce: dict, now: datetime) -> dict[str, Any]:

    # A defined attribute the profile lacks is None, not an unknown name.
    names: dict[str, Any] = dict.fromkeys(AttributeDefinition.objects.values_list("name", flat=True))
    names.update(profile.attributes or {})
    for api, column in EXPRESSION_COLUMNS.items():
        names[api] = getattr(profile, column)
    for key in COMMERCE_FIGURES:
        names[key] = commerce.get(key)
    last_order = commerce.get("lastOrder")
    names["daysSinceLastOrder"] = (now - last_order).days if last_order else None
    return names


def _events_function(profile_id: int, now: datetime):

    cache: dict[tuple[str, int | None], int] = {}

    def events(action, days=None):
        if not isinstance(action, str) or (days is not None and not isinstance(days, int)):
            raise TypeError("events(action, days) takes an action name and a whole number of days")
        if days is not None and not 0 < days <= MAX_WINDOW_DAYS:
            raise ValueError(f"days must be from 1 to {MAX_WINDOW_DAYS}")
        key = (action, days)
        if key not in cache:
            qs = Event.objects.filter(profile_id=profile_id, action=action)
            if days is not None:
                qs = qs.filter(time__gte=now - timedelta(days=days))
            cache[key] = qs.aggregate(n=Count("id"))["n"]
        return cache[key]

    return events


def _typed(expression: Expression, value):
    if value is None:
        return None
    if expression.type == ExpressionType.NUMBER:
        if isinstance(value, bool) or not isinstance(value, int | float):
            value = float(value)
        return value
    if expression.type == ExpressionType.BOOLEAN:
        return bool(value)
    return str(value)


def _display(expression: Expression, value, currency_symbol: str) -> str:
    if value is None:
        return "—"
    fmt = expression.format
    if fmt == ExpressionFormat.YES_NO or isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        if fmt == ExpressionFormat.INTEGER:
            return f"{value:,.0f}"
        if fmt == ExpressionFormat.DECIMAL:
            return f"{value:,.2f}"
        if fmt == ExpressionFormat.CURRENCY:
            return f"{currency_symbol}{value:,.2f}"
        if fmt == ExpressionFormat.PERCENT:
            return f"{value:.0%}"
        return f"{value:g}" if isinstance(value, float) else str(value)
    return str(value)


def profile_expressions(profile, *, expressions: list[Expression] | None = None, now: datetime | None = None):
    """Every expression evaluated for one profile (an error is shown, never raised)."""

    expressions = list(Expression.objects.all()) if expressions is None else expressions
    if not expressions:
        return []
    now = now or timezone.now()
    commerce = profile_commerce(profile_id=profile.pk)
    names = _context(profile, commerce, now)
    needs_last_event = any("daysSinceLastEvent" in e.expression for e in expressions)
    if needs_last_event:
        last = Event.objects.filter(profile_id=profile.pk, is_system=False).aggregate(t=Max("time"))["t"]
        names["daysSinceLastEvent"] = (now - last).days if last else None
    evaluator = _Evaluator(functions={**FUNCTIONS, "events": _events_function(profile.pk, now)}, names=names)
    results = []
    for expression in expressions:
        try:
            value = _typed(expression, evaluator.eval(expression.expression))
            results.append(
                ExpressionValue(
                    expression.name,
                    expression.label or expression.name,
                    value,
                    _display(expression, value, commerce.get("currencySymbol") or ""),
                )
            )
        except simpleeval.NameNotDefined as exc:
            results.append(_failed(expression, f"unknown name {exc.name}"))
        except Exception as exc:
            results.append(_failed(expression, type(exc).__name__ if not str(exc) else str(exc)[:80]))
    return results


def _failed(expression: Expression, error: str) -> ExpressionValue:
    return ExpressionValue(expression.name, expression.label or expression.name, None, "—", error=error)


def expressions_document(profile) -> dict[str, Any]:
    """``{name: value}`` for the profile's API document (``null`` where an expression could not be computed)."""
    return {e.name: e.value for e in profile_expressions(profile)}
