"""A parsed condition tree compiled into the Django ``Q`` over ``Profile`` that selects what it selects.

Every leaf compiles to a two-valued condition (never SQL NULL): a comparison with a missing value is false, so
``{"not": C}`` is exactly the profiles ``C`` does not match. Every op but ``exists`` is such a comparison, the op
``not`` ("has a value, and it is not this one") included: each leaf's comparison is ANDed with its "has a value"
test. Missing means SQL NULL, an absent attribute key (or JSON null), empty text, an identifier kind the profile
owns no value of, a commerce date or RFM segment a profile does not have yet; commerce amounts and counts are never
missing (a profile without orders has zero figures), nor are event counts (zero). Text compares case-insensitively
as ``lower(column)``, the expression the indexes are built on; identifiers match any value the profile owns (the
identifier table), not only its main one.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import (
    Count,
    DateField,
    DateTimeField,
    Exists,
    F,
    JSONField,
    OuterRef,
    Q,
    Subquery,
    Value,
)
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Cast, Coalesce, Lower
from django.db.models.lookups import Contains as LikeContains
from django.db.models.lookups import (
    Exact,
    GreaterThanOrEqual,
    In,
    IsNull,
    LessThanOrEqual,
    StartsWith,
)
from django.utils import timezone

from profiles.conditions.evaluate import as_decimal, commerce_default_matches
from profiles.conditions.hooks import hooks
from profiles.conditions.nodes import (
    AGREEMENT_STATES,
    COMPARE,
    AgreementCond,
    All,
    AnyOf,
    AttributeCond,
    CommerceCond,
    EventCond,
    FieldCond,
    Not,
    SegmentCond,
    TagCond,
)
from profiles.conditions.parse import condition_parse
from profiles.fields import ANONYMOUS, BOOLEAN, DATE, DATETIME, IDENTIFIER, LIST, NUMBER, TEXT
from profiles.models import Event, EventAction, Identifier, ProfileCommerce, ProfileTag
from profiles.models.profile import recognized_q


def condition_q(node, *, now: datetime | None = None, few: bool = False) -> Q:
    """The ``Q`` over ``Profile`` selecting what the tree selects.

    ``few``: the query is for a known handful of profiles (membership refresh), so event counts are correlated
    per profile; otherwise they are one grouped scan of the action's events (counts over the whole base).
    """
    return _Compiler(now or timezone.now(), few).q(node)


def _everyone() -> Q:
    """A condition every profile meets (an empty ``Q()`` would vanish from an OR instead of making it true)."""
    return Q(pk__isnull=False)


class _Compiler:
    def __init__(self, now: datetime, few: bool):
        self.now = now
        self.few = few

    def q(self, node) -> Q:
        if isinstance(node, All):
            if not node.children:
                return _everyone()
            q = self.q(node.children[0])
            for child in node.children[1:]:
                q &= self.q(child)
            return q
        if isinstance(node, AnyOf):
            if not node.children:
                return Q(pk__in=[])
            q = self.q(node.children[0])
            for child in node.children[1:]:
                q |= self.q(child)
            return q
        if isinstance(node, Not):
            return ~self.q(node.child)
        if isinstance(node, SegmentCond):
            return self.q(node.tree)
        method = getattr(self, f"_{type(node).__name__}")
        return method(node)

    # --- native fields ---

    def _FieldCond(self, node: FieldCond) -> Q:
        if node.type == IDENTIFIER:
            return self._identifier(node)
        if node.field == ANONYMOUS:
            anonymous = ~recognized_q()
            matched = anonymous if node.value else recognized_q()
            if node.op == "exists":
                return _everyone() if node.value else Q(pk__in=[])
            return matched if node.op == "eq" else ~matched
        return self._compare(F(node.column), node.type, node.op, node.value, nullable=node.column != "id")

    def _identifier(self, node: FieldCond) -> Q:
        owned = Identifier.objects.filter(profile=OuterRef("pk"), kind=node.field)
        op, value = node.op, node.value
        if op == "exists":
            return Q(Exists(owned)) if value else ~Q(Exists(owned))
        if op == "eq":
            return Q(Exists(owned.filter(value=value)))
        if op == "not":
            # Owns a value of this kind, and none of them is this one.
            return Q(Exists(owned)) & ~Q(Exists(owned.filter(value=value)))
        if op == "in":
            return Q(Exists(owned.filter(value__in=value)))
        # E-mails are stored in lower case (a plain LIKE); other kinds keep their case, so compare lower(value).
        lookup = LikeContains if op == "contains" else StartsWith
        stored = F("value") if node.field == "email" else Lower("value")
        return Q(Exists(owned.filter(lookup(stored, value))))

    def _compare(self, expr, type_: str, op: str, value, *, nullable: bool, present=None) -> Q:
        """``expr <op> value`` as a two-valued condition, false where there is no value; ``present`` is the "has a
        value" test (default: not null, and for text not empty either)."""
        if present is None:
            present = Q(IsNull(expr, False)) if nullable else _everyone()
            if type_ == TEXT:
                present &= ~Q(Exact(expr, ""))
        if op == "exists":
            return present if value else ~present
        if type_ == TEXT:
            expr = Lower(expr)
        if op == "eq":
            q = Q(Exact(expr, value))
        elif op == "not":
            q = ~Q(Exact(expr, value))
        elif op in COMPARE:
            q = Q(COMPARE[op](expr, value))
        elif op == "between":
            q = Q(GreaterThanOrEqual(expr, value[0])) & Q(LessThanOrEqual(expr, value[1]))
        elif op == "in":
            q = Q(In(expr, list(value)))
        elif op == "contains":
            q = Q(LikeContains(expr, value))
        elif op == "startsWith":
            q = Q(StartsWith(expr, value))
        elif op == "inLastDays":
            since = self.now - timedelta(days=value)
            q = Q(GreaterThanOrEqual(expr, since.date() if type_ == DATE else since))
        else:
            raise AssertionError(op)
        return q & present

    # --- custom attributes ---

    def _AttributeCond(self, node: AttributeCond) -> Q:
        name, op, value = node.name, node.op, node.value
        # "Has a value": the key is there and not JSON null (->> gives SQL NULL for both); text is not empty either.
        text = KeyTextTransform(name, "attributes")
        present = Q(IsNull(text, False))
        if node.type == TEXT:
            present &= ~Q(Exact(text, ""))
        if op == "exists":
            return present if value else ~present
        if node.type == LIST:
            return Q(attributes__contains={name: [value]})
        if node.type in (NUMBER, BOOLEAN) and op in ("eq", "not"):
            # Containment is what the jsonb_path_ops GIN index serves; 100 matches 100.0 (jsonb compares numbers).
            q = Q(attributes__contains={name: value})
            return q if op == "eq" else ~q & present
        if node.type == NUMBER and op == "in":
            q = Q(pk__in=[])
            for item in value:
                q |= Q(attributes__contains={name: item})
            return q
        if node.type == NUMBER:
            expr = KeyTransform(name, "attributes")
            return self._json_compare(expr, op, value, present)
        if node.type == DATE:
            return self._compare(Cast(text, DateField()), DATE, op, value, nullable=True, present=present)
        if node.type == DATETIME:
            return self._compare(Cast(text, DateTimeField()), DATETIME, op, value, nullable=True, present=present)
        return self._compare(text, TEXT, op, value, nullable=True, present=present)

    @staticmethod
    def _json_compare(expr, op, value, present) -> Q:
        def j(v):
            return Value(v, output_field=JSONField())

        if op in COMPARE:
            q = Q(COMPARE[op](expr, j(value)))
        elif op == "between":
            q = Q(GreaterThanOrEqual(expr, j(value[0]))) & Q(LessThanOrEqual(expr, j(value[1])))
        else:
            raise AssertionError(op)
        # A number attribute holds numbers only (writes check the type): jsonb orders them numerically.
        return q & present

    # --- tags, agreements ---

    def _TagCond(self, node: TagCond) -> Q:
        return Q(Exists(ProfileTag.objects.filter(profile=OuterRef("pk"), tag_id=node.tag_id)))

    def _AgreementCond(self, node: AgreementCond) -> Q:
        if hooks.agreement_q is None:
            raise RuntimeError("No app has registered agreements with the condition language.")
        return hooks.agreement_q(agreement_id=node.agreement_id, status=AGREEMENT_STATES[node.state])

    # --- events ---

    def _EventCond(self, node: EventCond) -> Q:
        # Custom events by their action (the partial index on custom events' (profile, action, time) serves it);
        # a system action (segment.entered, tag.added…) reads system events.
        events = Event.objects.filter(action=node.action, is_system=node.action in EventAction.SYSTEM)
        if node.within_days is not None:
            events = events.filter(time__gte=self.now - timedelta(days=node.within_days))
        op, n = node.op, node.count
        # Normalise to "at least k" / "at most k" / "exactly k".
        if op == "gt":
            op, n = "gte", n + 1
        elif op == "lt":
            if n == 0:
                return Q(pk__in=[])
            op, n = "lte", n - 1
        if op == "gte" and n == 0:
            return _everyone()
        if op in ("lte", "eq") and n == 0:
            return ~Q(Exists(events.filter(profile=OuterRef("pk"))))
        if op == "gte" and n == 1:
            return Q(Exists(events.filter(profile=OuterRef("pk"))))
        if self.few:
            counted = (
                events.filter(profile=OuterRef("pk")).order_by().values("profile").annotate(c=Count("*")).values("c")
            )
            expr = Coalesce(Subquery(counted), Value(0))
            lookup = {"gte": GreaterThanOrEqual, "lte": LessThanOrEqual, "eq": Exact}[op]
            return Q(lookup(expr, n))
        grouped = events.order_by().values("profile_id").annotate(c=Count("*"))
        if op == "gte":
            return Q(pk__in=grouped.filter(c__gte=n).values("profile_id"))
        if op == "lte":
            return ~Q(pk__in=grouped.filter(c__gt=n).values("profile_id"))
        return Q(pk__in=grouped.filter(c=n).values("profile_id"))

    # --- commerce ---

    def _CommerceCond(self, node: CommerceCond) -> Q:
        rows = ProfileCommerce.objects.filter(profile=OuterRef("pk"))
        # The condition on the commerce row, as a filter of the row subquery (one index probe per profile). Money is
        # numeric: 99.99 means the decimal 99.99, not the nearest binary float.
        value = as_decimal(node.value) if node.type == NUMBER else node.value
        inner = self._compare(F(node.column), node.type, node.op, value, nullable=node.type == DATETIME)
        q = Q(Exists(rows.filter(inner)))
        # A profile without orders has no row: it matches when its default figures would.
        if commerce_default_matches(node, now=self.now):
            q |= ~Q(Exists(rows))
        return q


def condition_compile(data, *, path: str = "filter", now: datetime | None = None, few: bool = False) -> Q:
    """Parse and compile in one step (a surface's usual need)."""
    return condition_q(condition_parse(data, path=path), now=now, few=few)
