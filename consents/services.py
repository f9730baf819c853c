"""Consent writes. Every change of a profile's decision on an agreement goes through ``consents_set_many``
(``consent_set`` is its one-item form).

Each change, in the caller's transaction: the profile's row is locked (its ledger chain is appended
in order), a ``ConsentRecord`` is appended, the ``ConsentState`` is written, and ``consent_changed``
is sent. Writing the state a profile already has is a no-op: no record, no signal. Many changes
cost the same fixed number of statements as one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from consents.context import RequestMeta, current_request_meta
from consents.ledger import NewRecord, records_append
from consents.models import (
    Agreement,
    AgreementText,
    ConsentRecord,
    ConsentSource,
    ConsentState,
    ConsentStatus,
)
from consents.signals import ConsentChange, consent_changed
from consents.tokens import confirmation_token_read
from crm.actors import actor_of
from crm.errors import DomainError, NotFound, ValidationFailed
from profiles.attribute_names import attribute_key
from profiles.models.profile import profiles_mark_changed
from profiles.selectors import profile_lookup
from profiles.tombstones import profile_missing

# Words that name a state in the surfaces (ExpertSender's True/False/AwaitingConfirmation included).
STATE_ALIASES = {
    True: ConsentStatus.GRANTED,
    False: ConsentStatus.DENIED,
    **{s.value: s for s in ConsentStatus},
}


# --- reading the API's words ------------------------------------------------------------------


def _check_writable(agreement: Agreement | None, name: str, where: str) -> Agreement:
    if agreement is None:
        raise ValidationFailed(f"Unknown agreement '{name}'.", field=where, code="agreement.unknown")
    if not agreement.is_active:
        raise ValidationFailed(
            f"Agreement '{name}' is retired and takes no changes.", field=where, code="agreement.retired"
        )
    return agreement


def agreements_parse(
    *, agreements: dict[str, Any], attributes: dict[str, Any], known: dict[str, Agreement] | None = None
) -> tuple[list[tuple[Agreement, bool]], dict[str, Any]]:
    """Split a Synerise write into (agreement, granted) pairs and the remaining custom attributes.

    ``agreements`` names any agreement by key; custom agreements may also come as ``attributes``
    keys (Synerise's documentation), matched by key as attribute names are (case and separators ignored). Values
    must be true or false; an unknown or retired agreement or a non-boolean is a ValidationFailed
    naming the field. ``known`` (key → agreement) spares the query when a batch preloads them.
    """
    if not agreements and not attributes:
        return [], attributes

    every = list(known.values()) if known is not None else list(Agreement.objects.all())
    by_key = {a.key: a for a in every}
    custom = {attribute_key(a.key): a for a in every if not a.is_default}
    pairs: list[tuple[Agreement, bool]] = []
    for key, value in agreements.items():
        agreement = _check_writable(by_key.get(key), key, f"agreements.{key}")
        pairs.append((agreement, _boolean(value, f"agreements.{key}")))
    if not custom:
        return pairs, attributes
    remaining: dict[str, Any] = {}
    for name, value in attributes.items():
        agreement = custom.get(attribute_key(name)) if isinstance(name, str) else None
        if agreement is None:
            remaining[name] = value
            continue
        _check_writable(agreement, name, f"attributes.{name}")
        pairs.append((agreement, _boolean(value, f"attributes.{name}")))
    return pairs, remaining


def _boolean(value, where: str) -> bool:
    if not isinstance(value, bool):
        raise ValidationFailed(
            f"{where} is an agreement: send true or false, not {value!r}.", field=where, code="consent.not_boolean"
        )
    return value


def consent_state_parse(*, value, field: str) -> str:
    """A state as the surfaces spell it (true/false, "True"/"False"/"AwaitingConfirmation", or ours)."""
    if isinstance(value, str):
        value = {"true": True, "false": False, "awaitingconfirmation": ConsentStatus.AWAITING}.get(
            value.lower().replace("_", ""), value
        )
    state = STATE_ALIASES.get(value) if isinstance(value, bool | str) else None
    if state is None:
        raise ValidationFailed(
            f"{field} must be granted, denied or awaiting_confirmation; got {value!r}.",
            field=field,
            code="consent.state",
        )
    return state


# --- the one write path: one decision or thousands, the same rules ------------------------------


@dataclass(frozen=True)
class ConsentItem:
    """One decision to record: profile ``client_id`` decided ``state`` on ``agreement``.

    ``decided_at`` (optional): when the person decided. Where it is given and the decision in force
    is newer, the item is not applied and comes back with a warning, so a late file cannot undo a
    newer withdrawal. ``force``: send the confirmation e-mail again when the state is already
    awaiting confirmation.
    """

    client_id: int
    agreement: Agreement
    state: str
    decided_at: datetime | None = None
    force: bool = False


@dataclass
class ConsentResult:
    changed: bool = False  # a ledger record was appended and the state written
    record_id: int | None = None
    warning: dict | None = None  # {code, message, field}: an older decision, not applied
    error: DomainError | None = None  # the item broke a rule; nothing was written for it


def consents_set_many(
    *,
    items: list[ConsentItem],
    source: str,
    actor: str = "",
    request_meta: RequestMeta | None = None,
) -> list[ConsentResult]:
    """Record many decisions with the rules of ``consent_set``; one result per item, in order.

    Items are applied in list order (two items on the same profile and agreement build on each
    other). An item that breaks a rule fails alone. Whatever the number of items, the work is a
    fixed number of statements: the profiles and their states read in one query (without locks:
    when nothing changes, that is all), the profiles that change locked and read again in one, the
    texts in force in one, the chain heads in one, every ledger record in one INSERT, every state
    in one upsert, and one ``consent_changed`` signal (its receiver writes the system events in one
    INSERT). Double opt-in e-mails are queued as one background task after the commit.
    """
    results = [ConsentResult() for _ in items]
    changes: list[_Change] = []
    for index, item in enumerate(items):
        try:
            _check(item)
        except DomainError as error:
            results[index].error = error
            continue
        changes.append(
            _Change(
                index=index,
                client_id=item.client_id,
                agreement=item.agreement,
                new_status=item.state,
                decided_at=item.decided_at,
                stale_check=item.decided_at is not None,
                ask=item.state == _AWAITING,
                force=item.force,
                details={"decidedAt": _iso(item.decided_at)} if item.decided_at is not None else {},
            )
        )
    if changes:
        with transaction.atomic(savepoint=False):
            _record(changes, results, source=source, actor=actor, request_meta=request_meta)
    return results


def consent_set(
    *,
    profile,
    agreement: Agreement,
    state: str,
    source: str,
    actor: str = "",
    request_meta: RequestMeta | None = None,
    force: bool = False,
    decided_at: datetime | None = None,
) -> bool:
    """Record a profile's decision on an agreement; returns whether the state changed.

    Moving to ``awaiting_confirmation`` (only for agreements that require double opt-in) queues a
    confirmation e-mail after the transaction commits; ``force`` queues it again when the state was
    already awaiting confirmation. One item of ``consents_set_many``: a broken rule is raised.
    """
    (result,) = consents_set_many(
        items=[ConsentItem(profile.pk, agreement, state, decided_at=decided_at, force=force)],
        source=source,
        actor=actor,
        request_meta=request_meta,
    )
    if result.error is not None:
        raise result.error
    return result.changed


def decision_time_check(*, value: datetime | None, field: str) -> datetime | None:
    """A decision time as the services take it: aware, and not in the future beyond the events' tolerance."""
    if value is None:
        return None
    if not isinstance(value, datetime) or timezone.is_naive(value):
        raise ValidationFailed(
            f"{field} must be a date and time with a time zone; got {value!r}.", field=field, code="consent.decided_at"
        )
    limit = timezone.now() + timedelta(seconds=settings.EVENT_FUTURE_TOLERANCE_SECONDS)
    if value > limit:
        raise ValidationFailed(f"{field} lies in the future.", field=field, code="consent.decided_at")
    return value


# Plain strings: ``ConsentStatus.values`` and enum member access cost microseconds per call (thousands per batch).
_STATES = frozenset(ConsentStatus.values)
_AWAITING = ConsentStatus.AWAITING.value


def _check(item: ConsentItem) -> None:
    """The rules an item must meet before anything is read or written."""
    agreement = item.agreement
    where = f"agreements.{agreement.key}"
    if item.state not in _STATES:
        raise ValidationFailed(
            f"Unknown consent state {item.state!r}; use one of {', '.join(ConsentStatus.values)}.",
            field=where,
            code="consent.state",
        )
    _check_writable(agreement, agreement.key, where)
    if item.state == _AWAITING and not agreement.requires_double_opt_in:
        raise ValidationFailed(
            f"Agreement '{agreement.key}' needs no confirmation; grant or deny it.",
            field=where,
            code="consent.confirmation_not_required",
        )
    decision_time_check(value=item.decided_at, field=where)


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="microseconds")


@dataclass
class _Change:
    index: int
    client_id: int
    agreement: Agreement
    new_status: str  # "" removes the decision (a merged-away profile)
    decided_at: datetime | None  # stored as the state's changed_at (now when None)
    stale_check: bool  # refuse when the decision in force is newer than decided_at
    ask: bool  # a double opt-in request: the profile needs an e-mail, and the e-mail is queued
    force: bool = False
    details: dict = field(default_factory=dict)


# The profiles and their states in force of the agreements concerned. Read first without locks (nothing to write is
# the common case of a re-sent file); the profiles that will change are then read again with their row locks, which
# order their ledger chains (FOR NO KEY UPDATE: rows referencing them can still be inserted). Every writer of states
# takes the profile's lock first.
STATES_SQL = """
SELECT p.id, p.email, s.agreement_id, s.status, s.changed_at
FROM profiles_profile p
LEFT JOIN consents_consentstate s ON s.profile_id = p.id AND s.agreement_id = ANY(%s::bigint[])
WHERE p.id = ANY(%s::bigint[])
ORDER BY p.id
"""
LOCK_AND_STATES_SQL = STATES_SQL + "FOR NO KEY UPDATE OF p\n"
TEXTS_IN_FORCE_SQL = """
SELECT DISTINCT ON (agreement_id) agreement_id, id FROM consents_agreementtext
WHERE agreement_id = ANY(%s::bigint[]) ORDER BY agreement_id, version DESC
"""
STATES_UPSERT_SQL = """
INSERT INTO consents_consentstate (profile_id, agreement_id, status, changed_at, source)
SELECT p, a, s, t, %s FROM json_to_recordset(%s::json) AS j(p bigint, a bigint, s text, t timestamptz)
ON CONFLICT (profile_id, agreement_id)
DO UPDATE SET status = EXCLUDED.status, changed_at = EXCLUDED.changed_at, source = EXCLUDED.source
"""
STATES_DELETE_SQL = """
DELETE FROM consents_consentstate s USING json_to_recordset(%s::json) AS j(p bigint, a bigint)
WHERE s.profile_id = j.p AND s.agreement_id = j.a
"""
LAST_RECORDS_SQL = """
SELECT DISTINCT ON (client_id, agreement_id) client_id, agreement_id, id FROM consents_consentrecord
WHERE client_id = ANY(%s::bigint[]) AND agreement_id = ANY(%s::bigint[]) ORDER BY client_id, agreement_id, seq DESC
"""


def _ids(values) -> str:
    """A bigint[] literal: psycopg adapts a Python list element by element (docs/benchmarks.md, B1–B3)."""
    return "{" + ",".join(str(int(v)) for v in sorted(set(values))) + "}"


def _plan(changes, results, emails, states, *, source, actor, meta, now):
    """Apply the rules item after item in memory: (records to write, e-mails to queue, final states)."""
    states = dict(states)
    written: list[tuple[_Change, NewRecord]] = []
    last_written: dict[tuple[int, int], NewRecord] = {}
    final: dict[tuple[int, int], tuple[str, datetime]] = {}
    asked: list[tuple[_Change, NewRecord | None]] = []  # confirmation e-mails to queue (None: the last record)
    for change in changes:
        result = results[change.index]
        agreement = change.agreement
        where = f"agreements.{agreement.key}"
        if change.client_id not in emails:
            result.error = profile_missing(change.client_id)  # Gone when an erasure won the race
            continue
        if change.ask and not emails[change.client_id]:
            result.error = ValidationFailed(
                f"Agreement '{agreement.key}' is confirmed by e-mail, and the profile has no e-mail address.",
                field=where,
                code="consent.no_email",
            )
            continue
        key = (change.client_id, agreement.pk)
        old_status, in_force_since = states.get(key, ("", None))
        if old_status == change.new_status:
            if change.ask and change.force:
                asked.append((change, last_written.get(key)))
            continue
        if change.stale_check and in_force_since is not None and change.decided_at < in_force_since:
            result.warning = {
                "code": "consent.stale",
                "field": where,
                "message": f"The decision on '{agreement.key}' made at {_iso(change.decided_at)} is older than the "
                f"one in force ({old_status}, {_iso(in_force_since)}); it was not applied.",
            }
            continue
        record = NewRecord(
            client_id=change.client_id,
            agreement_id=agreement.pk,
            text_id=None,
            old_status=old_status,
            new_status=change.new_status,
            source=source,
            actor=actor,
            ip_address=meta.ip_address,
            user_agent=meta.user_agent,
            details=change.details,
            created_at=now,
        )
        states[key] = final[key] = (change.new_status, change.decided_at or now)
        written.append((change, record))
        last_written[key] = record
        if change.ask:
            asked.append((change, record))
    return written, asked, final


def _read_states(changes: list[_Change], client_ids, *, lock: bool):
    emails: dict[int, str | None] = {}
    states: dict[tuple[int, int], tuple[str, datetime]] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            LOCK_AND_STATES_SQL if lock else STATES_SQL, [_ids(c.agreement.pk for c in changes), _ids(client_ids)]
        )
        for client_id, email, agreement_id, status, changed_at in cursor.fetchall():
            emails[client_id] = email
            if agreement_id is not None:
                states[(client_id, agreement_id)] = (status, changed_at)
    return emails, states


def _record(
    changes: list[_Change],
    results: list[ConsentResult],
    *,
    source: str,
    actor: str,
    request_meta: RequestMeta | None,
) -> None:
    """Apply checked changes in order inside the caller's transaction; fill in their results."""
    meta = request_meta or current_request_meta() or RequestMeta()
    now = timezone.now()
    emails, states = _read_states(changes, (c.client_id for c in changes), lock=False)
    plan = _plan(changes, results, emails, states, source=source, actor=actor, meta=meta, now=now)
    if plan[0]:
        # Lock the profiles that change and plan again on what the locks guard (another writer may have been first).
        changing = {record.client_id for _, record in plan[0]}
        locked_emails, locked_states = _read_states(
            [c for c in changes if c.client_id in changing], changing, lock=True
        )
        read_emails = {pid: e for pid, e in emails.items() if pid in changing}
        read_states = {key: v for key, v in states.items() if key[0] in changing}
        if (locked_emails, locked_states) != (read_emails, read_states):
            emails = {pid: e for pid, e in emails.items() if pid not in changing} | locked_emails
            states = {key: v for key, v in states.items() if key[0] not in changing} | locked_states
            for change in changes:
                results[change.index] = ConsentResult()
            plan = _plan(changes, results, emails, states, source=source, actor=actor, meta=meta, now=now)
    written, asked, final = plan
    if written:
        with connection.cursor() as cursor:
            cursor.execute(TEXTS_IN_FORCE_SQL, [_ids(c.agreement.pk for c, _ in written)])
            texts = dict(cursor.fetchall())
            for _, record in written:
                record.text_id = texts.get(record.agreement_id)
            records_append([record for _, record in written])
            upserts = [{"p": p, "a": a, "s": s, "t": _iso(t)} for (p, a), (s, t) in final.items() if s]
            deletes = [{"p": p, "a": a} for (p, a), (s, _) in final.items() if not s]
            if upserts:
                cursor.execute(STATES_UPSERT_SQL, [source, json.dumps(upserts, separators=(",", ":"))])
            if deletes:
                cursor.execute(STATES_DELETE_SQL, [json.dumps(deletes, separators=(",", ":"))])
            profiles_mark_changed(cursor, (record.client_id for _, record in written), locked=True)  # locked above
        for change, record in written:
            results[change.index].changed, results[change.index].record_id = True, record.id
        consent_changed.send(
            sender=ConsentState,
            changes=[
                ConsentChange(
                    client_id=record.client_id,
                    agreement_id=record.agreement_id,
                    agreement_key=change.agreement.key,
                    old_status=record.old_status,
                    new_status=record.new_status,
                    record_id=record.id,
                    changed_at=now,
                )
                for change, record in written
            ],
            source=source,
            actor=actor,
        )
    if asked:
        _confirmations_queue(asked)


def _confirmations_queue(asked: list[tuple[_Change, NewRecord | None]]) -> None:
    """Queue the double opt-in e-mails (one task) after the commit; a resend names the pair's last record."""
    missing = [change for change, record in asked if record is None]
    last: dict[tuple[int, int], int] = {}
    if missing:
        with connection.cursor() as cursor:
            cursor.execute(
                LAST_RECORDS_SQL, [_ids(c.client_id for c in missing), _ids(c.agreement.pk for c in missing)]
            )
            last = {(client_id, agreement_id): pk for client_id, agreement_id, pk in cursor.fetchall()}
    requests = []
    for change, record in asked:
        record_id = record.id if record is not None else last.get((change.client_id, change.agreement.pk))
        if record_id is not None:
            requests.append([change.client_id, change.agreement.pk, record_id])
    if requests:
        from consents.tasks import confirmation_emails_send

        transaction.on_commit(lambda: confirmation_emails_send.enqueue(requests))


def _last_record(client_id: int, agreement: Agreement) -> ConsentRecord:
    return ConsentRecord.objects.filter(client_id=client_id, agreement=agreement).order_by("-seq").first()


def consent_state_write(
    *,
    client_id: int,
    agreement: Agreement,
    new_status: str,
    source: str,
    actor: str,
    request_meta: RequestMeta | None,
    details: dict | None = None,
    decided_at: datetime | None = None,
) -> WrittenRecord | None:
    """Change one state ("" removes it) without the request rules (merges, confirmations): its ledger
    record (``.pk``) and signal, or None when nothing changed. ``decided_at`` becomes the state's time."""
    change = _Change(
        index=0,
        client_id=client_id,
        agreement=agreement,
        new_status=new_status,
        decided_at=decided_at,
        stale_check=False,
        ask=False,
        details=details or {},
    )
    results = [ConsentResult()]
    with transaction.atomic(savepoint=False):
        _record([change], results, source=source, actor=actor, request_meta=request_meta)
    if results[0].error is not None:
        raise results[0].error
    return WrittenRecord(results[0].record_id) if results[0].changed else None


@dataclass(frozen=True)
class WrittenRecord:
    pk: int


# --- double opt-in confirmation ---------------------------------------------------------------


@dataclass
class ConfirmResult:
    outcome: str  # "confirmed", "already_granted" or "not_pending"
    agreement: Agreement
    profile: Any


def consent_confirm(*, token: str, request_meta: RequestMeta | None = None) -> ConfirmResult:
    """Grant the consent a confirmation link asks for; raises LinkInvalid / LinkExpired for bad links.

    The link names the ledger record that asked for confirmation: once the consent was withdrawn
    or asked for again, an older link no longer grants anything.
    """

    data = confirmation_token_read(token)
    agreement = Agreement.objects.filter(pk=data["a"]).first()
    try:
        profile = profile_lookup(kind="clientId", value=data["c"])
    except NotFound:
        profile = None
    if agreement is None or profile is None:
        raise NotFound("The profile or agreement of this link no longer exists.", field="token", code="link.gone")
    if not agreement.requires_double_opt_in:
        raise ValidationFailed(
            f"Agreement '{agreement.key}' needs no confirmation.",
            field="token",
            code="consent.confirmation_not_required",
        )
    _check_writable(agreement, agreement.key, "token")
    with transaction.atomic():
        type(profile).objects.select_for_update(no_key=True).filter(pk=profile.pk).exists()  # orders the chain
        state = ConsentState.objects.filter(profile=profile, agreement=agreement).first()
        if state is not None and state.status == ConsentStatus.GRANTED:
            return ConfirmResult("already_granted", agreement, profile)
        last = _last_record(profile.pk, agreement)
        if state is None or state.status != ConsentStatus.AWAITING or last is None or last.pk != data["r"]:
            return ConfirmResult("not_pending", agreement, profile)
        consent_state_write(
            client_id=profile.pk,
            agreement=agreement,
            new_status=ConsentStatus.GRANTED,
            source=ConsentSource.CONFIRMATION,
            actor=actor_of(profile_id=profile.pk),
            request_meta=request_meta,
            details={"confirms": last.seq},
        )
    return ConfirmResult("confirmed", agreement, profile)


# --- resignation ------------------------------------------------------------------------------


def consents_withdraw(
    *, profile, agreements: list[Agreement], source: str, actor: str = "", request_meta: RequestMeta | None = None
) -> list[Agreement]:
    """Deny each agreement that is granted or awaiting confirmation; returns those that changed."""
    results = consents_set_many(
        items=[ConsentItem(profile.pk, agreement, ConsentStatus.DENIED) for agreement in agreements],
        source=source,
        actor=actor,
        request_meta=request_meta,
    )
    for result in results:
        if result.error is not None:
            raise result.error
    return [agreement for agreement, result in zip(agreements, results, strict=True) if result.changed]


def withdrawable_states(*, profile) -> list[ConsentState]:
    """What a person may withdraw on the resignation page: granted, or awaiting their confirmation."""
    return list(
        ConsentState.objects.filter(
            profile=profile,
            status__in=[ConsentStatus.GRANTED, ConsentStatus.AWAITING],
            agreement__is_active=True,
        )
        .select_related("agreement")
        .order_by("-agreement__is_default", "agreement_id")
    )


# --- the guard ----------------------------------------------------------------------------------


# --- agreement definitions ------------------------------------------------------------------------


def agreement_text_add(*, agreement: Agreement, text: str) -> AgreementText:
    """Add the next version of an agreement's consent text; earlier versions stay as they were."""
    text = text.strip()
    if not text:
        raise ValidationFailed("A consent text must not be empty.", field="text")
    with transaction.atomic():
        Agreement.objects.select_for_update().filter(pk=agreement.pk).exists()
        latest = agreement.texts.aggregate(v=Max("version"))["v"] or 0
        return AgreementText.objects.create(agreement=agreement, version=latest + 1, text=text)
