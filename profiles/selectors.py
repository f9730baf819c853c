"""Reads of the profiles domain that more than one surface needs: tags, the timeline, aggregates, commerce."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import Count, Max, Min, Q
from django.utils import timezone

from consents.models import Agreement, ConsentState, ConsentStatus
from consents.selectors import DEFAULT_KEYS
from crm.errors import DomainError, NotFound, ValidationFailed
from crm.paging import cursor_decode, cursor_encode
from crm.replica import read_connection
from profiles.currencies import currency_symbol
from profiles.fields import profile_from_row
from profiles.models import Event, Identifier, IdentifierKind, MergeRecord, Profile, ProfileCommerce, ProfileTag
from profiles.normalize import identifier_normalize
from profiles.tombstones import tombstone_check

AGGREGATE_WINDOWS = (7, 30, 90)


# --- who is this: identifier owners, clientIds, lookups ----------------------------------------------


def identifier_owners(*, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """The profile owning each (kind, normalised value) pair that has an owner, in one query."""
    pairs = set(pairs)
    if not pairs:
        return {}
    with read_connection().cursor() as cursor:
        if len(pairs) <= 16:  # a single write: index look-ups the planner sees as such
            cursor.execute(
                "SELECT kind, value, profile_id FROM profiles_identifier WHERE (kind, value) IN "  # noqa: S608
                f"({', '.join(['(%s, %s)'] * len(pairs))})",
                [part for pair in sorted(pairs) for part in pair],
            )
        else:  # a batch: the pairs travel as one JSON parameter
            cursor.execute(
                """
                SELECT i.kind, i.value, i.profile_id FROM profiles_identifier i
                JOIN json_to_recordset(%s::json) AS t(kind text, value text) ON i.kind = t.kind AND i.value = t.value
                """,
                [json.dumps([{"kind": k, "value": v} for k, v in pairs], separators=(",", ":"))],
            )
        return {(kind, value): pid for kind, value, pid in cursor.fetchall()}


def identifiers_held(*, profile_ids: Iterable[int]) -> dict[int, dict[str, set[str]]]:
    """Every identifier value of each profile, by kind, in one query (on the primary: the writes ask it inside
    their transaction, for the profiles they locked)."""
    held: dict[int, dict[str, set[str]]] = {pid: {} for pid in profile_ids}
    if not held:
        return held
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT profile_id, kind, value FROM profiles_identifier WHERE profile_id = ANY(%s)", [list(held)]
        )
        for pid, kind, value in cursor.fetchall():
            held[pid].setdefault(kind, set()).add(value)
    return held


def client_ids_resolve(*, client_ids: Iterable[int]) -> dict[int, int]:
    """Each clientId → the live profile it names: itself, or the survivor it was merged into; one query.
    Ids that name nothing are left out."""
    ids = sorted({int(i) for i in client_ids})
    if not ids:
        return {}
    with read_connection().cursor() as cursor:
        cursor.execute(
            """
            SELECT id, id FROM profiles_profile WHERE id = ANY(%(ids)s)
            UNION ALL
            SELECT a.old_client_id, a.profile_id FROM profiles_clientidalias a WHERE a.old_client_id = ANY(%(ids)s)
            """,
            {"ids": ids},
        )
        return dict(cursor.fetchall())


def _client_id(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValidationFailed(f"clientId must be a number; got {value!r}.", field="clientId") from None


def profile_lookup(*, kind: str, value) -> Profile:
    """The profile an identifier (or ``clientId``, following merges) names, or NotFound naming it."""
    if kind == "clientId":
        pid = client_ids_resolve(client_ids=[_client_id(value)]).get(_client_id(value))
    else:
        normalized = identifier_normalize(kind, value)
        pid = identifier_owners(pairs=[(kind, normalized)]).get((kind, normalized))
    profile = Profile.objects.filter(pk=pid).first() if pid is not None else None
    if profile is None:
        # Only a miss asks the tombstones: an erased clientId or uuid answers Gone, never someone else.
        tombstone_check(kind, _client_id(value) if kind == "clientId" else normalized)
        raise NotFound(f"No profile with {kind} '{value}'.", field=kind, code="profile.not_found")
    return profile


def tags_for(*, profile_ids: Iterable[int]) -> dict[int, list[str]]:
    """Per profile, its tag names (sorted), for any number of profiles in one query."""
    profile_ids = list(profile_ids)
    result: dict[int, list[str]] = {pid: [] for pid in profile_ids}
    if not profile_ids:
        return result
    rows = ProfileTag.objects.filter(profile_id__in=profile_ids).values_list("profile_id", "tag__name")
    for pid, name in rows.order_by("profile_id", "tag__name"):
        result[pid].append(name)
    return result


# --- the timeline ---------------------------------------------------------------------------------------


@dataclass
class TimelinePage:
    events: list[Event]
    next_cursor: str | None


def _cursor_encode(event: Event) -> str:
    return cursor_encode(text=f"{event.time.isoformat()}|{event.pk}")


def _cursor_decode(cursor: str) -> tuple[datetime, int]:
    try:
        time_text, pk = cursor_decode(cursor=cursor).rsplit("|", 1)
        time = datetime.fromisoformat(time_text)
        if timezone.is_naive(time):
            raise ValueError
        return time, int(pk)
    except ValueError:
        raise ValidationFailed("cursor is not one this API handed out.", field="cursor", code="field.cursor") from None


def profile_timeline(
    *,
    profile_id: int,
    actions: Sequence[str] | None = None,
    system: bool | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> TimelinePage:
    """One profile's events newest first, ``limit`` per page, keyset-paged on (time, id): one query a page."""
    if not 1 <= limit <= settings.TIMELINE_MAX_PAGE_SIZE:
        raise ValidationFailed(f"limit must be between 1 and {settings.TIMELINE_MAX_PAGE_SIZE}.", field="limit")
    queryset = Event.objects.filter(profile_id=profile_id)
    if actions:
        queryset = queryset.filter(action__in=list(actions))
    if system is not None:
        queryset = queryset.filter(is_system=system)
    if cursor:
        time, pk = _cursor_decode(cursor)
        queryset = queryset.filter(Q(time__lt=time) | Q(time=time, pk__lt=pk))
    events = list(queryset.order_by("-time", "-id")[: limit + 1])
    more = len(events) > limit
    events = events[:limit]
    return TimelinePage(events=events, next_cursor=_cursor_encode(events[-1]) if more else None)


# --- aggregates (the card's right column) ---------------------------------------------------------


def profile_event_aggregates(
    *, profile_id: int, windows: Sequence[int] = AGGREGATE_WINDOWS, now: datetime | None = None
) -> dict[str, Any]:
    """Counts of the profile's custom events by action over each window (days), and its last event time.

    Two queries whatever the number of actions and windows: one grouped count with a FILTER per window,
    one newest-event lookup on the timeline index.
    """
    now = now or timezone.now()
    windows = sorted(set(windows))
    since = {days: now - timedelta(days=days) for days in windows}
    rows = (
        Event.objects.filter(profile_id=profile_id, is_system=False, time__gte=since[windows[-1]], time__lte=now)
        .values("action")
        .annotate(**{f"d{days}": Count("id", filter=Q(time__gte=since[days])) for days in windows})
        .order_by("action")
    )
    counts = {row["action"]: {f"{days}d": row[f"d{days}"] for days in windows} for row in rows}
    last = Event.objects.filter(profile_id=profile_id, is_system=False).aggregate(last=Max("time"))["last"]
    return {"counts": counts, "lastEventTime": last}


def _money(value: Decimal | None) -> float:
    return float(value) if value is not None else 0.0


def profile_commerce(*, profile_id: int) -> dict[str, Any]:
    """The commerce figures and RFM of one profile, as the APIs name them (zeros for a profile with no orders)."""
    row = ProfileCommerce.objects.filter(profile_id=profile_id).first()
    return commerce_document(row=row)


def commerce_document(*, row: ProfileCommerce | None) -> dict[str, Any]:
    if row is None:
        row = ProfileCommerce()
    return {
        "totalSpent": _money(row.total_spent),
        "totalOrders": row.total_orders,
        "totalOrderReturns": row.total_returns,
        "avgOrder": _money(row.avg_order),
        "avgPricePoint": _money(row.avg_price_point),
        "lastOrder": row.last_order,
        "avgTimeBetweenOrdersInDays": round(row.avg_days_between_orders or 0.0, 2),
        "currencySymbol": currency_symbol(row.currency),
        "currency": row.currency or None,
        "rfmSegment": row.rfm_segment or None,
        "rfm": (
            {"recency": row.rfm_recency, "frequency": row.rfm_frequency, "monetary": row.rfm_monetary}
            if row.rfm_recency
            else None
        ),
    }


def commerce_for(*, profile_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Commerce figures for many profiles in one query."""
    profile_ids = list(profile_ids)
    rows = {row.profile_id: row for row in ProfileCommerce.objects.filter(profile_id__in=profile_ids)}
    return {pid: commerce_document(row=rows.get(pid)) for pid in profile_ids}


def profile_aggregates(*, profile_id: int, now: datetime | None = None) -> dict[str, Any]:
    """Everything the card's right column shows: event counts, last event time, commerce and RFM (3 queries)."""
    return {
        **profile_event_aggregates(profile_id=profile_id, now=now),
        "commerce": profile_commerce(profile_id=profile_id),
    }


# --- the admin card and lists ---------------------------------------------------------------------

USER_AGENT_KEYS = ("userAgent", "user_agent", "useragent", "ua")
ACTIVITY_WEEKS = 26


def profile_actions(*, profile_id: int) -> list[str]:
    """The distinct actions on one profile's timeline (the card's action filter), sorted; one query."""
    return list(
        Event.objects.filter(profile_id=profile_id).order_by("action").values_list("action", flat=True).distinct()
    )


def profile_weekly_activity(
    *, profile_id: int, weeks: int = ACTIVITY_WEEKS, now: datetime | None = None
) -> list[tuple[datetime, int]]:
    """The profile's custom events per week (weeks start on Monday, oldest first, zeros included); one query."""
    from django.db.models.functions import TruncWeek

    now = timezone.localtime(now or timezone.now())
    this_week = (now - timedelta(days=now.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    starts = [this_week - timedelta(weeks=weeks - 1 - i) for i in range(weeks)]
    rows = (
        Event.objects.filter(profile_id=profile_id, is_system=False, time__gte=starts[0])
        .annotate(week=TruncWeek("time"))
        .values("week")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts = {timezone.localtime(row["week"]).date(): row["n"] for row in rows}
    return [(start, counts.get(start.date(), 0)) for start in starts]


def profile_user_agents(*, profile_id: int, limit: int = 50) -> list[dict[str, Any]]:
    """The user agents the profile's events carry in their params, most recently seen first; one query."""
    from django.db.models.fields.json import KT
    from django.db.models.functions import Coalesce

    return list(
        Event.objects.filter(profile_id=profile_id)
        .annotate(ua=Coalesce(*(KT(f"params__{key}") for key in USER_AGENT_KEYS)))
        .filter(ua__isnull=False)
        .exclude(ua="")
        .values("ua")
        .annotate(events=Count("id"), first=Min("time"), last=Max("time"))
        .order_by("-last")[:limit]
    )


def profile_consent_states(*, profile_id: int) -> list[tuple[Any, Any]]:
    """Every active agreement (and any retired one the profile decided on) with the profile's state or None."""

    states = {s.agreement_id: s for s in ConsentState.objects.filter(profile_id=profile_id)}
    agreements = Agreement.objects.filter(Q(is_active=True) | Q(pk__in=list(states))).order_by("-is_default", "id")
    return [(agreement, states.get(agreement.pk)) for agreement in agreements]


def profile_merge_history(*, profile_id: int, limit: int = 50) -> list[MergeRecord]:
    """The profiles merged into this one, newest first (undone merges included)."""
    return list(MergeRecord.objects.filter(survivor_client_id=profile_id).order_by("-created_at", "-id")[:limit])


def tag_profile_counts(*, tag_ids: Iterable[int]) -> dict[int, int]:
    """How many profiles carry each tag, for a page of tags in one grouped query on the (tag, profile) index."""
    tag_ids = list(tag_ids)
    counts = dict.fromkeys(tag_ids, 0)
    rows = ProfileTag.objects.filter(tag_id__in=tag_ids).values("tag_id").annotate(n=Count("id")).order_by()
    counts.update({row["tag_id"]: row["n"] for row in rows})
    return counts


# --- profiles with what their documents show, in one query -----------------------------------------------

# Every API read of a profile runs this, so it is one hand-written statement: the profile row plus its
# previous clientIds, tag names and consent decisions (granted channel agreements, decisions on active custom ones).
# Compiling the ORM equivalents cost more than running them (docs/benchmarks.md, B4).
#
# Each extra is defined once, as an ordered list of values from one table's rows of a profile: (value, order,
# FROM, the column that names the profile, further conditions). A read of one profile computes them as correlated
# subqueries (``_extras_columns``); a capture of many profiles at once, grouped by profile over all of them and
# joined (``profile_snapshots_sql``: one index scan per table instead of one per profile and table).
_EXTRAS = (
    ("a.old_client_id", "a.old_client_id", "profiles_clientidalias a", "a.profile_id", ""),
    ("t.name", "t.name", "profiles_profiletag pt JOIN profiles_tag t ON t.id = pt.tag_id", "pt.profile_id", ""),
    (
        "json_build_array(ag.key, ag.is_default, s.status)",
        "ag.key",
        "consents_consentstate s JOIN consents_agreement ag ON ag.id = s.agreement_id",
        "s.profile_id",
        "AND ((ag.key = ANY(:defaults) AND s.status = :granted) OR (NOT ag.is_default AND ag.is_active))",
    ),
)
# The rules of profile_lookup, in SQL: an identifier's owner, or a clientId
# that is live or was merged into a live profile.
_BY_IDENTIFIER = "p.id = (SELECT profile_id FROM profiles_identifier WHERE kind = %(kind)s AND value = %(value)s)"
_BY_CLIENT_ID = (
    "p.id = COALESCE((SELECT id FROM profiles_profile WHERE id = %(value)s),"
    " (SELECT profile_id FROM profiles_clientidalias WHERE old_client_id = %(value)s))"
)


@dataclass
class ProfileExtras:
    previous_clients: list[int]
    tags: list[str]
    agreements: dict[str, bool]  # the seven channel agreements, granted → true
    custom_agreements: dict[str, bool]  # decisions on active custom agreements


def _profile_columns() -> list[str]:
    return [f.column for f in Profile._meta.concrete_fields]


def _fetchall_prepared(sql: str, params) -> list[tuple]:
    """Run a hot read with server-side binding, so psycopg prepares it once per connection (with
    ``DB_PREPARED_STATEMENTS``); still through Django's cursor wrapper, so it is logged and counted. Inside
    ``replica_reads`` it runs on the replica."""
    connection = read_connection()
    if not settings.DB_PREPARED_STATEMENTS:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    # What connection.cursor() does, around a server-side-binding psycopg cursor from the start (instead of
    # opening Django's client-side one only to replace it): connect if needed, translate errors, wrap.
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        raw = psycopg.Cursor(connection.connection)
    with connection._prepare_cursor(raw) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _with_literals(sql: str) -> str:
    """``sql`` with the default agreements' keys and the granted status written in as literals: constants of the
    code (checked to be plain words), not sent and adapted as parameters on every call."""

    if not all(w.isascii() and w.isalnum() for w in [*DEFAULT_KEYS, ConsentStatus.GRANTED.value]):
        raise ValueError("agreement keys and statuses written into SQL must be plain words")
    sql = sql.replace(":defaults", "'{" + ",".join(DEFAULT_KEYS) + "}'::text[]")
    return sql.replace(":granted", f"'{ConsentStatus.GRANTED.value}'")


@cache
def _extras_columns() -> str:
    """The select list of a profile (``p``) and its document extras: every column, then each of ``_EXTRAS`` as a
    correlated subquery."""
    extras = ", ".join(
        f"ARRAY(SELECT {value} FROM {source} WHERE {owner} = p.id {more} ORDER BY {order})"  # noqa: S608 (constants)
        for value, order, source, owner, more in _EXTRAS
    )
    return _with_literals(f"{', '.join('p.' + c for c in _profile_columns())}, {extras}")


@cache
def _extras_statement(where: str) -> tuple[str, int, list]:
    """The statement for one of the few ``where`` clauses, its number of profile columns and their converters
    (built once: every API read of a profile runs it)."""
    sql = f"SELECT {_extras_columns()} FROM profiles_profile p WHERE {where}"  # noqa: S608
    return sql, len(_profile_columns()), _profile_converters()


@cache
def _profile_converters() -> list:
    """(column position, ``from_db_value``) of the profile's columns that convert what the driver returns."""
    return [(i, f.from_db_value) for i, f in enumerate(Profile._meta.concrete_fields) if hasattr(f, "from_db_value")]


def _extras(previous, tags, consents) -> ProfileExtras:
    """The extras from the statement's three extra columns (``_EXTRAS``)."""

    consents = [json.loads(c) if isinstance(c, str) else c for c in consents]  # json handed over as text where told
    agreements = dict.fromkeys(DEFAULT_KEYS, False)
    custom = {}
    for key, is_default, status in consents:
        if is_default:
            agreements[key] = True
        else:
            custom[key] = status == ConsentStatus.GRANTED
    return ProfileExtras(list(previous), list(tags), agreements, custom)


def _profiles_with_extras(where: str, params: dict) -> list[tuple[Profile, ProfileExtras]]:
    sql, n, converters = _extras_statement(where)
    connection = read_connection()
    rows = _fetchall_prepared(sql, params)
    result = []
    for row in rows:
        values = list(row[:n])
        for i, convert in converters:
            values[i] = convert(values[i], None, connection)
        profile = profile_from_row(values, db=connection.alias)
        result.append((profile, _extras(row[n], row[n + 1], row[n + 2])))
    return result


# --- a profile's state captured in SQL, read back later -------------------------------------------------

# The same row and extras as ``_extras_statement``'s (the same ``_EXTRAS``), as one JSON array: the outbox
# writes it into its rows in the change's own statement, and ``profile_from_snapshot`` turns it back into what
# ``profiles_with_extras`` returns, so the document rendered from it is the one a read would have answered then.


@cache
def profile_snapshots_sql(*, ids: str) -> str:
    """A query of ``(id, snapshot)``, for the profiles whose id is in ``ids`` (a SQL expression of a ``bigint[]``,
    evaluated once per table): the JSON text of each profile with its document's extras, as they are when the
    statement runs. Each extra is grouped by profile over all of them, in one index scan of its table."""
    columns = [f"p.{c}" for c in _profile_columns()]
    joins = []
    for i, (value, order, source, owner, more) in enumerate(_EXTRAS):
        grouped = (
            f"SELECT {owner} AS id, array_agg({value} ORDER BY {order}) AS v FROM {source}"  # noqa: S608
            f" WHERE {owner} = ANY(({ids})::bigint[]) {more} GROUP BY 1"
        )
        joins.append(f"LEFT JOIN ({grouped}) x{i} ON x{i}.id = p.id")
        columns.append(f"COALESCE(x{i}.v, '{{}}')")
    return _with_literals(
        f"SELECT p.id, json_build_array({', '.join(columns)})::text AS snapshot "  # noqa: S608
        f"FROM profiles_profile p {' '.join(joins)} WHERE p.id = ANY(({ids})::bigint[])"
    )


_JSON_NATIVE = {"BigAutoField", "AutoField", "BigIntegerField", "IntegerField", "CharField", "TextField", "JSONField"}


@cache
def _snapshot_parsers() -> list:
    """Per profile column, how its JSON value becomes the Python value a read gives (None: as it is)."""
    parsers = []
    for field in Profile._meta.concrete_fields:
        kind = field.get_internal_type()
        if kind == "DateTimeField":
            parsers.append(lambda v: None if v is None else datetime.fromisoformat(v))
        elif kind == "DateField":
            parsers.append(lambda v: None if v is None else date.fromisoformat(v))
        elif kind in _JSON_NATIVE:
            parsers.append(None)
        else:  # a column of another type needs its own reading here, or documents would drift
            raise TypeError(f"profile_from_snapshot cannot read a {kind} ({field.column})")
    return parsers


def profile_from_snapshot(*, snapshot: str) -> tuple[Profile, ProfileExtras]:
    """The profile and extras a ``profile_snapshots_sql`` snapshot holds (a Profile not attached to any row now)."""
    row = json.loads(snapshot)
    n = len(_profile_columns())
    parsers = _snapshot_parsers()
    values = [value if parse is None else parse(value) for parse, value in zip(parsers, row[:n], strict=True)]
    profile = profile_from_row(values, db=DEFAULT_DB_ALIAS)
    return profile, _extras(row[n], row[n + 1], row[n + 2])


def profiles_versions(*, ids: Iterable[int]) -> dict[int, tuple[Profile, str]]:
    """Profiles by id with their row version (``xmin``), in one query and without locks: a batch reads
    every profile it may change this way and locks, checking the version, only those it does change."""
    ids = sorted(set(ids))
    if not ids:
        return {}
    columns = _profile_columns()
    sql = f"SELECT {', '.join('p.' + c for c in columns)}, p.xmin::text FROM profiles_profile p WHERE p.id = ANY(%s)"  # noqa: S608
    connection = connections[DEFAULT_DB_ALIAS]  # a batch's read before it writes: always the primary
    with connection.cursor() as cursor:
        cursor.execute(sql, [ids])
        rows = cursor.fetchall()
    result = {}
    for row in rows:
        values = list(row[:-1])
        for i, convert in _profile_converters():
            values[i] = convert(values[i], None, connection)
        profile = profile_from_row(values, db=connection.alias)
        result[profile.pk] = (profile, row[-1])
    return result


def profiles_with_extras(*, ids: Sequence[int]) -> list[tuple[Profile, ProfileExtras]]:
    """The profiles with these ids (in this order; missing ones left out) and their document extras."""
    if not ids:
        return []
    found = {p.pk: (p, e) for p, e in _profiles_with_extras("p.id = ANY(%(ids)s)", {"ids": list(ids)})}
    return [found[pid] for pid in ids if pid in found]


def profile_with_extras(*, kind: str, value) -> tuple[Profile, ProfileExtras]:
    """The profile an identifier (normalised) or a clientId names, with its extras; NotFound otherwise."""
    if kind == "clientId":
        try:
            params = {"value": int(value)}
        except (TypeError, ValueError):
            raise ValidationFailed(f"clientId must be a number; got {value!r}.", field="clientId") from None
        where = _BY_CLIENT_ID
    else:
        params = {"kind": kind, "value": identifier_normalize(kind, value)}
        where = _BY_IDENTIFIER
    rows = _profiles_with_extras(where, params)
    if not rows:
        tombstone_check(kind, params["value"])
        raise NotFound(f"No profile with {kind} '{value}'.", field=kind, code="profile.not_found")
    return rows[0]


# --- the admin's free-text search ------------------------------------------------------------------------

MAX_CLIENT_ID = 2**63 - 1


PARTIAL_MIN_LENGTH = 3  # trigram indexes serve LIKE '%…%' from three characters on
EXACT_LIMIT = 1000


def profile_search_exact_ids(*, term: str) -> list[int]:
    """Profiles a term names exactly: any identifier (once normalised, so secondary uuids count) or the clientId."""
    pairs = []
    for kind in IdentifierKind.values:
        try:
            pairs.append((kind, identifier_normalize(kind, term)))
        except DomainError:
            continue  # the term is not a valid identifier of this kind
    ids = list(
        Identifier.objects.filter(_any(Q(kind=k, value=v) for k, v in pairs))
        .values_list("profile_id", flat=True)
        .distinct()[:EXACT_LIMIT]
    )
    if term.isdigit() and int(term) <= MAX_CLIENT_ID:
        ids.append(int(term))
    return ids


def profile_search_q(*, term: str, exact_ids: list[int]) -> Q:
    """Profiles a free-text admin search finds: the exact matches, then parts of e-mails and names.

    A term of three characters or more also matches any part of an e-mail ("natalia74" finds
    natalia74@example.com) and, word by word, parts of first and last names ("nowa" finds Nowak; "ola now"
    finds Ola Nowak); the trigram indexes of migration 0005 serve these. Shorter words match whole names.
    ``_first``/``_last`` are Lower() aliases the caller annotates (the admin's ``get_search_results``).
    """
    q = Q(pk__in=exact_ids)
    lowered = term.lower()
    if len(lowered) >= PARTIAL_MIN_LENGTH:
        q |= Q(email__contains=lowered)
    words = lowered.split()
    if words:
        whole = " ".join(words)
        q |= Q(_first=whole) | Q(_last=whole)
        names = Q()
        for word in words:
            if len(word) >= PARTIAL_MIN_LENGTH:
                names &= Q(_first__contains=word) | Q(_last__contains=word)
            else:
                names &= Q(_first=word) | Q(_last=word)
        q |= names
    return q


def _any(qs) -> Q:
    combined = Q(pk__in=[])
    for q in qs:
        combined |= q
    return combined


# --- row estimates: a count from PostgreSQL's statistics instead of a COUNT(*) over a large table -------------


def table_row_estimate(*, model) -> int:
    """The table's row count as the statistics have it (-1 when it was never analysed)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [model._meta.db_table])
        row = cursor.fetchone()
    return row[0] if row else -1


def queryset_row_estimate(*, queryset) -> int:
    """The planner's estimate of how many rows ``queryset`` returns (one EXPLAIN, under a millisecond)."""
    sql, params = queryset.order_by().values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])
